# Shared definitions of the workflow. Everything the engine and the workflow must agree on (modes, cell
# names and paths, grid expansion, CLI settings of a cell, the tables and figures) is defined once in the
# torch-free package `lmht.experiment`; this file only adapts it to Snakemake.

import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.settings.types import DeploymentMethod

from lmht.experiment import FIGURES, MODES, TABLES, Cell, cell_settings, suite_cells
from lmht.experiment.catalog import TABLE_FORMATS
from lmht.experiment.cell import WILDCARD_PATTERNS, cell_pattern
from lmht.experiment.grid import cell_preset, check_suite, cli_arguments, layered, missing_data_roots

REPO = Path(workflow.basedir)
RESULTS = config["results"]
SUITE = config["suite"]
#: Datasets with a `prepare_<dataset>` rule (prepare_data.smk; lmht.data.prepare.DATASETS).
PREPARED_DATASETS = ("cifar10", "cifar100", "imagenet200", "cifar10_dvs", "imagenet")
CACHE_DIR = os.path.normpath(config["cache_dir"])


def prepare_data():
    """Whether the prepare rules run (a boolean: the Snakefile reads `--config prepare_data=...` as YAML)."""
    return config["prepare_data"]


def prepared_by_workflow(dataset):
    """Whether a prepare rule puts `dataset` in place (then its data root may not exist yet)."""
    return prepare_data() and dataset in PREPARED_DATASETS

try:
    for warning in check_suite(config, SUITE):
        logger.warning(f"config: {warning}")
except ValueError as exc:
    raise WorkflowError(f"Invalid config: key {exc}") from None


wildcard_constraints:
    suite="|".join(config["suites"]),
    seed=WILDCARD_PATTERNS["seed"],


SUITE_DIR = f"{RESULTS}/{{suite}}"
CELL_DIR = f"{SUITE_DIR}/runs/{{dataset}}/{{arch}}/{{cell}}/seed{{seed}}"


def cell_dir(mode):
    """Folder pattern of the cells of `mode` (the cell wildcard constrained to that mode's names)."""
    return CELL_DIR.replace("{cell}", f"{{cell,{cell_pattern(mode)}}}")


def cell_of(wildcards):
    return Cell.parse(wildcards.cell, wildcards.dataset, wildcards.arch, wildcards.seed)


def get_cell_inputs(wildcards):
    """The dataset check of the cell's dataset, and the metrics.json of the cell it builds on."""
    inputs = {"data": f"{RESULTS}/{wildcards.suite}/data/{wildcards.dataset}.json"}
    parent = cell_of(wildcards).parent()
    if parent is not None:
        inputs["parent"] = str(parent.path(RESULTS, wildcards.suite))
    return inputs


def preset(wildcards):
    """Params function: the packaged preset of the cell's dataset (lmht.experiment.grid.cell_preset)."""
    return cell_preset(config, wildcards.suite, wildcards.dataset)


def cli_args(wildcards):
    """Params function: the cell's `key=value` CLI settings (lmht.experiment.grid.cell_settings)."""
    settings = with_data_cache(cell_settings(config, wildcards.suite, cell_of(wildcards)), wildcards)
    return shlex.join(cli_arguments(settings))


def resource(name, default=None):
    """Resource function: the suite/dataset `resources` of the cell's mode, else the mode's default."""

    def value(wildcards, attempt=1):
        mode = cell_of(wildcards).mode
        v = layered(config, wildcards.suite, wildcards.dataset, mode, "resources").get(
            name, getattr(MODES[mode], name, default))
        return v * attempt if name == "runtime" else v  # a retried job gets more time

    return value


#: Python of the jobs: the conda env's with --sdm conda, else the one running Snakemake.
PYTHON = "python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method else shlex.quote(sys.executable)
RUN_CELL = (
    f"{PYTHON} {shlex.quote(str(REPO / 'workflow' / 'scripts' / 'run_cell.py'))} --pythonpath {shlex.quote(str(REPO))}"
    f" --on-failure {config['on_failure']} --out $(dirname {{output.metrics:q}}) --log {{log:q}} --threads {{threads}}"
    " --launcher {params.launcher:q} --preset={params.preset:q} -- {params.args}"
)


def launcher(wildcards):
    """Params function: how the CLI starts (torchrun for multi-GPU cells)."""
    gpus = resource("gpu", 0)(wildcards)
    if gpus > 1:
        return f"{PYTHON} -m torch.distributed.run --standalone --nproc_per_node={gpus} -m lmht"
    return f"{PYTHON} -m lmht"


def get_suite_cells(wildcards):
    """Every cell metrics.json of a suite (input of aggregation and plots)."""
    return [str(c.path(RESULTS, wildcards.suite)) for c in suite_cells(config, wildcards.suite)]


def check_data_roots():
    """Every data root of the selected suite must exist (onstart: after the DAG, before the first job, so
    dry runs, --lint and --report work without the data; skipped with check_data_roots: false)."""
    missing = missing_data_roots(config, SUITE, PREPARED_DATASETS if prepare_data() else ())
    if missing and config["check_data_roots"]:
        text = "; ".join(f"data_roots.{d} = {r!r} does not exist" for d, r in missing)
        raise WorkflowError(
            f"Invalid config: key 'data_roots.{missing[0][0]}': {text} (needed by suite {SUITE!r}; set it in "
            f"config.yaml or with --config 'data_roots={{{missing[0][0]}: /path}}', or "
            "check_data_roots=false if the data exist only on the compute nodes)")
    return missing


for _d, _r in missing_data_roots(config, SUITE, PREPARED_DATASETS if prepare_data() else ()):
    logger.warning(f"config: data_roots.{_d} = {_r!r} does not exist; a run of suite {SUITE!r} will stop "
                   "before its first job (a dry run is fine)")


def report_item(entry, path):
    """An aggregate/plots output shown in the report under its catalog section, with its caption."""
    return report(path, caption=str(REPO / entry.caption), category=entry.category, labels={entry.kind: entry.name})


def table_outputs():
    """Named outputs of the aggregate rule: NAME_csv/md/tex, and NAME_html shown in the report."""
    out = {f"{n}_{ext}": f"{SUITE_DIR}/tables/{n}.{ext}" for n in TABLES for ext in TABLE_FORMATS}
    out |= {f"{n}_html": report_item(e, f"{SUITE_DIR}/tables/{n}.html") for n, e in TABLES.items()}
    return out


def figure_outputs():
    return {n: report_item(e, f"{SUITE_DIR}/figures/{n}.png") for n, e in FIGURES.items()}


def get_final_outputs():
    """Targets of the default target `all` for the selected suite (every table, figure and the report)."""
    tables = [f"{RESULTS}/{SUITE}/tables/{n}.{ext}" for n in TABLES for ext in [*TABLE_FORMATS, "html"]]
    return [*tables, *(f"{RESULTS}/{SUITE}/figures/{n}.png" for n in FIGURES), f"{RESULTS}/{SUITE}/report.html"]


# --------------------------------------------------------------------------------------------------
# Data preparation (the prepare_<dataset> rules of prepare_data.smk; lmht/data/prepare.py)
# --------------------------------------------------------------------------------------------------
#: `python -m lmht.data.prepare` imports this repository's lmht package (as run_cell.py does for cells)
PREPARE_COMMAND = f"PYTHONPATH={shlex.quote(str(REPO))}${{{{PYTHONPATH:+:$PYTHONPATH}}}} {PYTHON} -m lmht.data.prepare"


def prepared_record(dataset):
    """The record a prepare rule writes (what was found or downloaded, where, checksums)."""
    return f"{CACHE_DIR}/prepared/{dataset}.json"


def get_prepared_data(wildcards):
    """Input of dataset_info: the record of the dataset's prepare rule, when the workflow prepares it."""
    return {"prepared": prepared_record(wildcards.dataset)} if prepared_by_workflow(wildcards.dataset) else {}


def dvs_frames(suite):
    """Frames per CIFAR10-DVS sample in a suite (its `frames` setting; the loader's default is 10)."""
    settings = layered(config, suite, "cifar10_dvs", "all", "settings")
    return settings.get("frames") or settings.get("dataset_options", {}).get("frames") or 10


#: The CIFAR10-DVS frame cache (the loader keeps one subfolder per frames/size/antialias setting): the
#: prepare rule fills it, training reads it.
DVS_FRAME_CACHE = f"{CACHE_DIR}/cifar10_dvs"


def dvs_prepare_args(suite):
    """Params of prepare_cifar10_dvs: the suite's frames and the frame cache."""
    return f"--frames {dvs_frames(suite)} --frame-cache {shlex.quote(DVS_FRAME_CACHE)}"


def with_data_cache(settings, wildcards):
    """A cell's settings with the dataset's cache in cache_dir (CIFAR10-DVS frames), never in a data root."""
    if wildcards.dataset != "cifar10_dvs":
        return settings
    options = {"cache_dir": DVS_FRAME_CACHE, **settings.get("dataset_options", {})}
    return {**settings, "dataset_options": options}
