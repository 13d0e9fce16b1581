"""The catalog of tables and figures a suite produces: one declaration each.

Each entry names its builder (``"module:function"`` in :mod:`lmht.experiment.results`, imported only
when it runs, so this module stays torch-free for ``common.smk``), its title and its report section.
Its caption is ``workflow/report/tables/{name}.rst`` or ``workflow/report/figures/{name}.rst`` (RST,
rendered by the Snakemake report). The Snakemake
outputs of the ``aggregate`` and ``plots`` rules, the report's sections and the tests are all derived
from :data:`TABLES` and :data:`FIGURES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FIGURES", "SECTIONS", "TABLES", "TABLE_FORMATS", "Entry", "builder"]

#: Report sections, in reading order (the report opens with a summary of what ran and the verdicts).
SECTIONS = {
    "oq1": "Open question 1: how close does LM-HT get to the quantized ANN?",
    "oq2": "Open question 2: how does the gain scale with depth?",
    "oq3": "Open question 3: which (L, T) at a fixed budget, and how much does the T-GIM matter?",
    "claims": "The paper's claims and tables",
    "variants": "Our variants against the paper's method",
    "detail": "Every cell: training, activity, costs",
}
#: Every table is written in each of these formats (plus NAME.html, shown in the report).
TABLE_FORMATS = ("csv", "md", "tex")


@dataclass(frozen=True)
class Entry:
    """A table or a figure: ``kind`` (``table``/``figure``), ``name`` (file stem and caption stem),
    ``title``, report ``section`` (a key of :data:`SECTIONS`) and ``build`` (``"module:function"``
    relative to lmht.experiment.results)."""

    kind: str
    name: str
    title: str
    section: str
    build: str

    @property
    def category(self) -> str:
        return SECTIONS[self.section]

    @property
    def caption(self) -> str:
        """The caption file, relative to the repository root."""
        return f"workflow/report/{self.kind}s/{self.name}.rst"


TABLES: dict[str, Entry] = {}
FIGURES: dict[str, Entry] = {}


def _table(name, title, section, build):
    TABLES[name] = Entry("table", name, title, section, build)


def _figure(name, title, section, build):
    FIGURES[name] = Entry("figure", name, title, section, build)


_table("gap", "Gap to the quantized ANN (OQ1)", "oq1", "questions:gap")
_table("table4", "Table 4: hybrid training vs conversion vs the QCFS ANN", "oq1", "paper:table4")
_table("depth", "Scaling with depth (OQ2)", "oq2", "questions:depth")
_table("budget", "Best (L, T) at a fixed L·T budget (OQ3a)", "oq3", "questions:budget")
_table("tgim", "T-GIM initialization (OQ3b)", "oq3", "questions:tgim")
_table("claims", "Paper claims vs this suite", "claims", "paper:claims")
_table("orderings", "Orderings the paper claims", "claims", "paper:orderings_")
_table("table1", "Table 1: ablation of L, T and T-GIM (direct training)", "claims", "paper:table1")
_table("table2", "Table 2: before and after reparameterization", "claims", "paper:table2")
_table("table3", "Table 3: direct training", "claims", "paper:table3")
_table("tableS1", "Table S1: other architectures", "claims", "paper:tableS1")
_table("variants", "Our variants vs the paper's method", "variants", "paper:variants")
_table("cells", "All cells", "detail", "paper:cells")

_figure("accuracy_vs_steps", "Accuracy against single-threshold-equivalent steps t·L", "oq1",
        "plots:accuracy_vs_steps")
_figure("ann_gap", "Gap to the quantized ANN against T·L and Q", "oq1", "plots:ann_gap")
_figure("depth", "Top-1 and the LM-HT − IF gain against depth", "oq2", "plots:depth")
_figure("lt_heatmap", "Top-1 over (L, T) with budget lines", "oq3", "plots:lt_heatmap")
_figure("tgim_matrices", "Learned T-GIM matrices", "oq3", "plots:tgim_matrices")
_figure("firing_rate", "Firing rate per spiking layer", "detail", "plots:firing_rate")
_figure("training_curves", "Training curves by stage", "detail", "plots:training_curves")


def builder(entry: Entry) -> Callable:
    """The function that builds ``entry`` (imports ``lmht.experiment.results.<module>``)."""
    module, _, function = entry.build.partition(":")
    return getattr(importlib.import_module(f"lmht.experiment.results.{module}"), function)
