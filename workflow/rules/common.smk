# Shared definitions: config checks that the schema cannot express, grid expansion into cells,
# output paths, CLI arguments and resources of a cell, and the get_* input functions.
#
# A *cell* is one run of the `lmht` CLI, identified by its folder
#   {results}/{suite}/runs/{dataset}/{arch}/{cell}/seed{seed}/
# with {cell} one of
#   ann_Q{Q}                              QCFS ANN, shared by every convert/hybrid cell with that Q
#   convert-Q{Q}_L1_T{T}_none             QCFS -> IF conversion, accuracy after each step up to T
#   hybrid-Q{Q}_L{L}_T{T}_{tgim}          LM-HT from the QCFS ANN, STBP fine-tuned
#   direct-{neuron}_L{L}_T{T}_{tgim}      direct STBP (neuron lmht | mht | if | lif; tgim none without T-GIM)
#   reparam-{src}_L{L}_T{T}_{tgim}        single-threshold reparameterization of cell {src}_L{L}_T{T}_{tgim}

import itertools
import json
import os
import shlex
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.settings.types import DeploymentMethod

REPO = Path(workflow.basedir)
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
DATASETS = SCHEMA["$defs"]["dataset"]["enum"]
ARCHS = SCHEMA["$defs"]["arch"]["enum"]
TGIM_INITS = SCHEMA["$defs"]["tgim_init"]["enum"]
NEURONS = ["lmht", "mht", "if", "lif"]
MODES = ["ann", "convert", "hybrid", "direct", "reparam"]
#: Datasets that need no files on disk.
DATASETS_WITHOUT_FILES = {"synthetic"}

RESULTS = os.path.normpath(config["results"])
SUITES = config["suites"]


def config_error(key, message):
    """Stop at parse time with a message that names the offending config key."""
    raise WorkflowError(f"Invalid config: key '{key}': {message}")


if config["suite"] not in SUITES:
    config_error("suite", f"unknown suite {config['suite']!r}; defined suites: {', '.join(SUITES)}")
SUITE = config["suite"]


def _alternatives(values):
    return "|".join(sorted((str(v) for v in values), key=len, reverse=True))


# Paths must parse in one way only: every wildcard is restricted to the values it can take.
wildcard_constraints:
    suite=_alternatives(SUITES),
    dataset=_alternatives(DATASETS),
    arch=_alternatives(ARCHS),
    neuron=_alternatives(NEURONS),
    tgim=_alternatives([*TGIM_INITS, "none"]),
    src=r"direct-(?:lmht|mht)|hybrid-Q[1-9][0-9]*",
    L=r"[1-9][0-9]*",
    T=r"[1-9][0-9]*",
    Q=r"[1-9][0-9]*",
    seed=r"[0-9]+",


SUITE_DIR = f"{RESULTS}/{{suite}}"
RUNS = f"{SUITE_DIR}/runs/{{dataset}}/{{arch}}"
ANN_DIR = f"{RUNS}/ann_Q{{Q}}/seed{{seed}}"
CONVERT_DIR = f"{RUNS}/convert-Q{{Q}}_L1_T{{T}}_none/seed{{seed}}"
HYBRID_DIR = f"{RUNS}/hybrid-Q{{Q}}_L{{L}}_T{{T}}_{{tgim}}/seed{{seed}}"
DIRECT_DIR = f"{RUNS}/direct-{{neuron}}_L{{L}}_T{{T}}_{{tgim}}/seed{{seed}}"
REPARAM_DIR = f"{RUNS}/reparam-{{src}}_L{{L}}_T{{T}}_{{tgim}}/seed{{seed}}"


# --------------------------------------------------------------------------------------------------
# Grid expansion
# --------------------------------------------------------------------------------------------------
def cell_name(kind, L=1, T=1, tgim="none", Q=None, neuron=None, src=None):
    """Folder name of a cell (see the header of this file)."""
    if kind == "ann":
        return f"ann_Q{Q}"
    if kind == "convert":
        return f"convert-Q{Q}_L1_T{T}_none"
    if kind == "hybrid":
        return f"hybrid-Q{Q}_L{L}_T{T}_{tgim}"
    if kind == "direct":
        return f"direct-{neuron}_L{L}_T{T}_{tgim}"
    if kind == "reparam":
        return f"reparam-{src}_L{L}_T{T}_{tgim}"
    raise ValueError(kind)


def grid_pairs(grid):
    """(L, T) pairs of a grid: explicit LT pairs, else every split of each L*T budget, else L x T."""
    if grid["LT"]:
        return [tuple(p) for p in grid["LT"]]
    if grid["budget"]:
        return [(L, b // L) for b in grid["budget"] for L in range(1, b + 1) if b % L == 0]
    return list(itertools.product(grid["L"], grid["T"]))


def expand_grid(suite_name, grid, seeds):
    """Yield the cells of one grid as dicts (prerequisite cells included)."""
    suite = SUITES[suite_name]
    for dataset, arch, method, (L, T), tgim, seed in itertools.product(
        grid["datasets"], grid["archs"], grid["methods"], grid_pairs(grid), grid["tgim_init"], seeds
    ):
        base = dict(suite=suite_name, dataset=dataset, arch=arch, seed=seed)
        qs = grid["Q"] or [L * T]

        def cell(kind, **kw):
            c = dict(base, kind=kind, L=1, T=1, tgim="none", Q=None, neuron=None, src=None)
            c.update(kw)
            c["cell"] = cell_name(**{k: c[k] for k in ("kind", "L", "T", "tgim", "Q", "neuron", "src")})
            c["method"] = c["cell"].split("_")[0]
            return c

        if method in ("ann", "convert", "hybrid", "reparam-hybrid"):
            for Q in qs:
                yield cell("ann", Q=Q, L=None, T=None)
                if method == "convert":
                    yield cell("convert", Q=Q, T=suite["convert_steps"])
                # hybrid cells start from the exact conversion, which needs a uniform T-GIM
                if method in ("hybrid", "reparam-hybrid"):
                    yield cell("hybrid", Q=Q, L=L, T=T, tgim="uniform")
                if method == "reparam-hybrid":
                    yield cell("reparam", src=f"hybrid-Q{Q}", L=L, T=T, tgim="uniform")
        elif method in ("direct-lmht", "reparam-direct"):
            yield cell("direct", neuron="lmht", L=L, T=T, tgim=tgim)
            if method == "reparam-direct":
                yield cell("reparam", src="direct-lmht", L=L, T=T, tgim=tgim)
        elif method == "direct-mht":
            yield cell("direct", neuron="mht", L=L, T=T)
        elif method in ("direct-if", "direct-lif"):
            # single-threshold baselines run at the L*T budget (the paper's fair-comparison convention)
            yield cell("direct", neuron=method.split("-")[1], L=1, T=L * T)
        else:  # the schema's enum makes this unreachable
            config_error(f"suites.{suite_name}.grids.{grid['name']}.methods", f"unknown method {method!r}")


def cell_path(c):
    """metrics.json of a cell."""
    return f"{RESULTS}/{c['suite']}/runs/{c['dataset']}/{c['arch']}/{c['cell']}/seed{c['seed']}/metrics.json"


def suite_cells(suite_name):
    """All cells of a suite: {metrics.json path: cell dict with the list of grids that asked for it}."""
    suite = SUITES[suite_name]
    cells = {}
    for grid in suite["grids"]:
        seeds = config["seeds"] or grid["seeds"] or suite["seeds"]
        for c in expand_grid(suite_name, grid, seeds):
            path = cell_path(c)
            entry = cells.setdefault(path, dict(c, grids=[], path=path))
            if grid["name"] not in entry["grids"]:
                entry["grids"].append(grid["name"])
    return cells


def suite_datasets(suite_name):
    return sorted({d for grid in SUITES[suite_name]["grids"] for d in grid["datasets"]})


def check_suites():
    """Checks the schema cannot express; every message names the key."""
    names = set()
    for i, grid in enumerate(SUITES[SUITE]["grids"]):
        key = f"suites.{SUITE}.grids[{i}]"
        if grid["name"] in names:
            config_error(f"{key}.name", f"grid name {grid['name']!r} is used twice in suite {SUITE!r}")
        names.add(grid["name"])
    for name, suite in SUITES.items():
        for dataset, block in suite["datasets"].items():
            if dataset not in {d for g in suite["grids"] for d in g["datasets"]}:
                logger.warning(f"config: suites.{name}.datasets.{dataset} is set but no grid of suite "
                               f"{name!r} uses dataset {dataset!r}")


def check_data_roots():
    """Every dataset of the selected suite must exist on disk.

    Runs in `onstart` (after the DAG is built, before the first job) so that dry runs, --lint and
    --report work on a machine without the data; it is skipped with check_data_roots: false.
    """
    missing = []
    for dataset in suite_datasets(SUITE):
        if dataset in DATASETS_WITHOUT_FILES:
            continue
        root = config["data_roots"].get(dataset, "")
        if not root or not os.path.exists(root):
            missing.append((dataset, root))
    if not missing or not config["check_data_roots"]:
        return missing
    text = "; ".join(f"data_roots.{d} = {r!r} does not exist" for d, r in missing)
    config_error(
        f"data_roots.{missing[0][0]}",
        f"{text} (needed by suite {SUITE!r}; set it in config.yaml or with --config "
        f"'data_roots={{{missing[0][0]}: /path}}', or check_data_roots=false if the data exist only "
        "on the compute nodes)",
    )


check_suites()
for _dataset in suite_datasets(SUITE):
    _root = config["data_roots"].get(_dataset, "")
    if _dataset not in DATASETS_WITHOUT_FILES and not os.path.exists(_root):
        logger.warning(f"config: data_roots.{_dataset} = {_root!r} does not exist; a run of suite "
                       f"{SUITE!r} will stop before its first job (a dry run is fine)")
CELLS = suite_cells(SUITE)


# --------------------------------------------------------------------------------------------------
# Settings, resources and the command of a cell
# --------------------------------------------------------------------------------------------------
def _layered(suite_name, dataset, mode, section):
    """suite.<section>.all < suite.<section>.<mode> < suite.datasets.<dataset>.<section>.all < ...<mode>."""
    suite = SUITES[suite_name]
    blocks = [suite[section], suite["datasets"].get(dataset, {}).get(section, {})]
    merged = {}
    for block in blocks:
        merged.update(block.get("all", {}))
        merged.update(block.get(mode, {}))
    return merged


def cell_settings(wildcards, mode):
    """The CLI key=value settings of a cell (suite/dataset settings, then what the path fixes)."""
    s = _layered(wildcards.suite, wildcards.dataset, mode, "settings")
    s.update(dataset=wildcards.dataset, arch=wildcards.arch, seed=int(wildcards.seed))
    if wildcards.dataset not in DATASETS_WITHOUT_FILES:
        s["data_root"] = config["data_roots"][wildcards.dataset]
    if mode in ("ann", "convert", "hybrid"):
        s["levels"] = int(wildcards.Q)
    if mode in ("convert", "hybrid"):
        s["ann_checkpoint"] = os.path.join(ann_dir(wildcards), "checkpoint.pt")
    if mode == "convert":  # the curve runs to T; top1, SOPs and energy are measured at T too
        s.update(convert_steps=int(wildcards.T), T=int(wildcards.T))
    if mode in ("hybrid", "direct", "reparam"):
        s.update(L=int(wildcards.L), T=int(wildcards.T))
    if mode == "hybrid":
        s.update(neuron="lmht", tgim_init=wildcards.tgim)
    if mode == "direct":
        s["neuron"] = wildcards.neuron
        if wildcards.tgim != "none":
            s["tgim_init"] = wildcards.tgim
    if mode == "reparam":
        s["snn_checkpoint"] = os.path.join(os.path.dirname(reparam_source(wildcards)), "checkpoint.pt")
        if wildcards.tgim != "none":
            s["tgim_init"] = wildcards.tgim
    return s


def _cli_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))  # JSON is YAML, which the CLI parses
    return str(value)


def cli_args(mode):
    """Params function: the `key=value ...` arguments of the lmht CLI, shell-quoted."""

    def args(wildcards):
        settings = cell_settings(wildcards, mode)
        return " ".join(shlex.quote(f"{k}={_cli_value(v)}") for k, v in settings.items())

    return args


def job_resource(mode, name, default):
    """Resource function: suite/dataset `resources` of this stage, else the default."""

    def value(wildcards, attempt=1):
        v = _layered(wildcards.suite, wildcards.dataset, mode, "resources").get(name, default)
        if name == "runtime":  # a retried job (timeout, node failure) gets more time
            v = v * attempt
        return v

    return value


def uses_conda():
    return DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method


def python():
    """Python of the jobs: the conda env's with --sdm conda, else the one running Snakemake."""
    return "python" if uses_conda() else shlex.quote(sys.executable)


def launcher(mode):
    """Params function: how the lmht CLI is started (torchrun for multi-GPU jobs)."""

    def value(wildcards):
        gpus = job_resource(mode, "gpu", 0)(wildcards)
        if gpus > 1:
            return f"{python()} -m torch.distributed.run --standalone --nproc_per_node={gpus} -m lmht"
        return f"{python()} -m lmht"

    return value


RUN_CELL_SCRIPT = shlex.quote(str(REPO / "workflow" / "scripts" / "run_cell.py"))
CELL_SHELL = (
    f"{python()} {RUN_CELL_SCRIPT} --pythonpath {shlex.quote(str(REPO))} --on-failure {config['on_failure']}"
    " --mode {params.mode} --out {params.outdir:q} --log {log:q} --threads {threads}"
    " {params.requires} --launcher {params.launcher:q} -- {params.args}"
)


def outdir(wildcards, output):
    return os.path.dirname(output.metrics)


# --------------------------------------------------------------------------------------------------
# Input functions
# --------------------------------------------------------------------------------------------------
def ann_dir(wildcards):
    return ANN_DIR.format(**{k: wildcards[k] for k in ("suite", "dataset", "arch", "Q", "seed")})


def get_ann(wildcards):
    """The shared QCFS ANN of a convert/hybrid cell."""
    return {"ann": os.path.join(ann_dir(wildcards), "metrics.json")}


def reparam_source(wildcards):
    return (f"{RESULTS}/{wildcards.suite}/runs/{wildcards.dataset}/{wildcards.arch}/"
            f"{wildcards.src}_L{wildcards.L}_T{wildcards.T}_{wildcards.tgim}/seed{wildcards.seed}/metrics.json")


def get_reparam_source(wildcards):
    """The trained LM-HT cell (direct or hybrid) that a reparam cell converts."""
    return {"snn": reparam_source(wildcards)}


def get_data(wildcards):
    return {"data": f"{RESULTS}/{wildcards.suite}/data/{wildcards.dataset}.json"}


def requires(*names):
    """Params function: upstream cells whose failure makes this cell fail without running."""

    def value(wildcards, input):
        return " ".join(f"--requires {shlex.quote(input[n])}" for n in names)

    return value


def get_suite_cells(wildcards):
    """Every cell metrics.json of a suite (input of aggregation and plots)."""
    return sorted(suite_cells(wildcards.suite))


def get_final_outputs():
    """Targets of the default rule `all` for the selected suite (every table and figure)."""
    return [
        *(f"{RESULTS}/{SUITE}/tables/{name}.{ext}" for name in TABLES for ext in [*TABLE_FORMATS, "html"]),
        *(f"{RESULTS}/{SUITE}/figures/{name}.png" for name in FIGURES),
    ]


# --------------------------------------------------------------------------------------------------
# Aggregation, plots and the report
# --------------------------------------------------------------------------------------------------
Q1 = "1. Gap to the quantized ANN"
Q2 = "2. Scaling with depth"
Q3 = "3. Best (L, T) at a fixed budget, T-GIM init"
CLAIMS = "0. Paper claims"
ACTIVITY = "4. Training and activity"
#: table name -> (report category, caption file in workflow/report/)
TABLES = {
    "claims": (CLAIMS, "claims.rst"),
    "orderings": (CLAIMS, "orderings.rst"),
    "table1": (CLAIMS, "table1.rst"),
    "table2": (CLAIMS, "table2.rst"),
    "table3": (CLAIMS, "table3.rst"),
    "table4": (Q1, "table4.rst"),
    "tableS1": (CLAIMS, "tableS1.rst"),
    "gap": (Q1, "gap.rst"),
    "depth": (Q2, "depth.rst"),
    "budget": (Q3, "budget.rst"),
    "tgim": (Q3, "tgim.rst"),
    "cells": (ACTIVITY, "cells.rst"),
}
TABLE_FORMATS = ["csv", "md", "tex"]
#: figure name -> (report category, caption file)
FIGURES = {
    "accuracy_vs_steps": (Q1, "accuracy_vs_steps.rst"),
    "depth": (Q2, "depth_figure.rst"),
    "lt_heatmap": (Q3, "lt_heatmap.rst"),
    "tgim_matrices": (Q3, "tgim_matrices.rst"),
    "firing_rate": (ACTIVITY, "firing_rate.rst"),
    "training_curves": (ACTIVITY, "training_curves.rst"),
}


def table_outputs():
    """Named outputs of the aggregate rule (NAME_csv/md/tex, and NAME_html shown in the report)."""
    out = {}
    for name, (category, caption) in TABLES.items():
        for ext in TABLE_FORMATS:
            out[f"{name}_{ext}"] = f"{SUITE_DIR}/tables/{name}.{ext}"
        out[f"{name}_html"] = report(
            f"{SUITE_DIR}/tables/{name}.html",
            caption=f"../report/{caption}",
            category=category,
            labels={"table": name},
        )
    return out


def figure_outputs():
    """Named outputs of the plots rule, each shown in the report."""
    return {
        name: report(
            f"{SUITE_DIR}/figures/{name}.png",
            caption=f"../report/{caption}",
            category=category,
            labels={"figure": name},
        )
        for name, (category, caption) in FIGURES.items()
    }


def get_paper_claims(wildcards):
    return str(REPO / config["paper_claims"])


MANIFEST_KEYS = ("path", "dataset", "arch", "kind", "method", "cell", "neuron", "L", "T", "tgim", "Q", "src",
                 "seed", "grids")


def cell_manifest(wildcards):
    """Params function: the cells of the suite, i.e. what aggregation expects to find."""
    return [{k: c[k] for k in MANIFEST_KEYS} for c in suite_cells(wildcards.suite).values()]
