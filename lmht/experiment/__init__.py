"""The experiment contract: what the engine, the workflow, the aggregation and the tests agree on.

* :mod:`~lmht.experiment.modes` — the CLI's modes (parent checkpoint, inherited keys, resources);
* :mod:`~lmht.experiment.variants` — our named alternatives to the paper's method (defaults = paper);
* :mod:`~lmht.experiment.cell` — a cell of a suite: its fields, folder name, path, parent;
* :mod:`~lmht.experiment.grid` — suites/grids of ``config.yaml`` expanded into cells and CLI settings;
* :mod:`~lmht.experiment.record` — ``metrics.json``: the typed run record, written and read here only;
* :mod:`~lmht.experiment.catalog` — the tables and figures a suite produces;
* :mod:`~lmht.experiment.results` — aggregation, statistics, tables, figures and the report (pandas,
  scipy, seaborn; imported only by the aggregation).

Everything above ``results`` uses the standard library only (``workflow/rules/common.smk`` imports it
at parse time without torch).
"""

from .catalog import FIGURES, SECTIONS, TABLES
from .cell import Cell
from .grid import cell_settings, suite_cells
from .modes import MODES, Mode, get_mode
from .record import FailureRecord, RunRecord, read_record, write_record
from .variants import VARIANTS, Variant

__all__ = [
    "FIGURES",
    "MODES",
    "SECTIONS",
    "TABLES",
    "VARIANTS",
    "Cell",
    "FailureRecord",
    "Mode",
    "RunRecord",
    "Variant",
    "cell_settings",
    "get_mode",
    "read_record",
    "suite_cells",
    "write_record",
]
