"""Tests of the Snakemake workflow (Snakefile, config.yaml, workflow/).

Snakemake always runs in a subprocess in a temporary working directory (`-s REPO/Snakefile`), so the
repository's results/ is never touched. The end-to-end smoke run is marked slow (about 2 minutes on
2 CPU cores).
"""

import html
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_utils import CLAIMS, REPO, SCRIPTS, fixture_suite, snakemake

from lmht.experiment import FIGURES, MODES, SECTIONS, TABLES, VARIANTS

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


# --------------------------------------------------------------------------------------------------
# Static checks and dry runs
# --------------------------------------------------------------------------------------------------
def test_lint_is_clean(tmp_path):
    res = snakemake("--lint", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Congratulations" in res.stdout + res.stderr


def test_every_schema_key_has_description_and_default():
    """Walk the schema: every property has a description; every optional property has a default.

    Exception: resources are inherited between layers (the schema documents the rule defaults), so a
    schema default would override the inherited value.
    """
    missing = []
    inherited = set(SCHEMA["$defs"]["job_resources"]["properties"])

    def walk(node, where):
        if not isinstance(node, dict):
            return
        required = set(node.get("required", []))
        for key, sub in (node.get("properties") or {}).items():
            if "description" not in sub:
                missing.append(f"{where}.{key}: description")
            if (
                key not in required
                and "default" not in sub
                and not (where.endswith("job_resources") and key in inherited)
            ):
                missing.append(f"{where}.{key}: default")
            walk(sub, f"{where}.{key}")
        for key, sub in (node.get("$defs") or {}).items():
            walk(sub, f"$defs.{key}")

    walk(SCHEMA, "config")
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert not missing, missing


def test_schema_cli_keys_match_the_engine():
    """The settings the schema accepts are the lmht CLI's keys, minus those the workflow sets per cell."""
    from lmht.config import SCHEMA as CLI_SCHEMA

    set_by_workflow = {
        "dataset",
        "data_root",
        "arch",
        "neuron",
        "L",
        "T",
        "tgim_init",
        "levels",
        "seed",
        "ann_checkpoint",
        "snn_checkpoint",
        "convert_steps",
        "resume",
    }
    accepted = set(SCHEMA["$defs"]["cli_settings"]["propertyNames"]["enum"])
    # variant keys are set per cell from the grid's `variants`, so that cell names always show them
    assert accepted == set(CLI_SCHEMA) - set_by_workflow - set(VARIANTS)


def test_schema_variants_match_the_contract():
    """The grid's `variants` are exactly the declared variants, the paper's method first and the default."""
    props = SCHEMA["$defs"]["grid"]["properties"]["variants"]["properties"]
    assert set(props) == set(VARIANTS)
    for key, variant in VARIANTS.items():
        assert props[key]["items"]["enum"] == list(variant.choices)
        assert props[key]["default"] == [variant.default]


def test_schema_names_match_the_library():
    from lmht.data import list_datasets
    from lmht.models import list_models

    assert set(SCHEMA["$defs"]["dataset"]["enum"]) == set(list_datasets())
    assert set(SCHEMA["$defs"]["arch"]["enum"]) == set(list_models())
    from lmht.experiment.cell import NEURONS, TGIM_INITS
    from lmht.experiment.grid import METHODS
    from lmht.neurons import list_neurons

    assert set(SCHEMA["$defs"]["method"]["enum"]) == set(METHODS)
    assert set(SCHEMA["$defs"]["tgim_init"]["enum"]) == set(TGIM_INITS)
    assert set(NEURONS) == set(list_neurons())


def job_counts(output: str) -> dict[str, int]:
    """The `Job stats` table of a dry run: rule -> number of jobs."""
    stats = output[output.index("Job stats:") :].splitlines()[3:]
    counts = {}
    for line in stats:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.parametrize("suite", ["smoke", "quick", "paper"])
def test_dry_run(tmp_path, suite):
    """The DAG has exactly the cells the contract expands the suite into, one job per cell and seed."""
    from collections import Counter

    from lmht.data.prepare import DATASETS as PREPARED_DATASETS
    from lmht.experiment import suite_cells
    from lmht.experiment.grid import suite_datasets

    res = snakemake("-n", "--config", f"suite={suite}", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["seeds"] = None
    expected = Counter(MODES[c.mode].rule for c in suite_cells(config, suite))
    expected.update(
        dataset_info=len(suite_datasets(config, suite)), aggregate=1, plots=1, report_html=1, all=1
    )
    expected.update({f"prepare_{d}": 1 for d in suite_datasets(config, suite) if d in PREPARED_DATASETS})
    counts = job_counts(res.stdout + res.stderr)
    assert counts.pop("total") == sum(expected.values())
    assert counts == dict(expected)
    assert not (tmp_path / "results").exists()


def test_command_line_config_values_are_read_as_yaml(tmp_path):
    """`--config seeds=[0,1] prepare_data=false` (Snakemake passes strings) means a list and a boolean."""
    res = snakemake(
        "-n",
        "--config",
        "suite=paper",
        "seeds=[0,1]",
        "prepare_data=false",
        "check_data_roots=false",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout + res.stderr)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    from lmht.experiment import suite_cells

    config["seeds"] = [0, 1]
    assert counts["train_direct"] == sum(c.mode == "direct" for c in suite_cells(config, "paper"))
    assert not any(rule.startswith("prepare_") for rule in counts)


def test_cell_paths_parse(tmp_path):
    """Every kind of cell path maps to its rule, and the ANN is shared by convert and hybrid cells."""
    base = "results/quick/runs/fashion_mnist/lmht_fmnist_cnn"
    targets = {
        f"{base}/ann_Q4/seed0/metrics.json": "train_ann",
        f"{base}/convert-Q4_L1_T16_none/seed0/metrics.json": "convert_eval",
        f"{base}/hybrid-Q4_L2_T2_uniform/seed1/metrics.json": "finetune_hybrid",
        f"{base}/direct-lmht_L2_T2_identity+direct-tgim/seed0/metrics.json": "train_direct",
        f"{base}/direct-if_L1_T4_none/seed0/metrics.json": "train_direct",
        f"{base}/reparam-hybrid-Q4_L2_T2_uniform/seed0/metrics.json": "reparam_eval",
        f"{base}/reparam-direct-lmht_L2_T2_uniform/seed0/metrics.json": "reparam_eval",
    }
    for target, rule in targets.items():
        res = snakemake("-n", target, "--config", "suite=quick", cwd=tmp_path)
        assert res.returncode == 0, res.stdout + res.stderr
        assert rule in res.stdout, target
    res = snakemake(
        "-n",
        f"{base}/convert-Q4_L1_T16_none/seed0/metrics.json",
        f"{base}/hybrid-Q4_L2_T2_uniform/seed0/metrics.json",
        "--config",
        "suite=quick",
        cwd=tmp_path,
    )
    assert res.stdout.count("rule train_ann:") == 1


# --------------------------------------------------------------------------------------------------
# Config errors: each fails before any job, naming the key
# --------------------------------------------------------------------------------------------------
def grid(**kw):
    g = {"name": "g", "datasets": ["synthetic"], "archs": ["lmht_fmnist_cnn"], "methods": ["direct-lmht"]}
    g.update(kw)
    return {"suites": {"smoke": {"grids": [g]}}}


BAD_CONFIGS = {
    "unknown dataset": (grid(datasets=["mnist"]), "datasets"),
    "unknown arch": (grid(archs=["resnet50"]), "archs"),
    "unknown method": (grid(methods=["direct-relu"]), "methods"),
    "L < 1": (grid(L=[0]), "key 'suites.smoke.grids[0].L[0]'"),
    "T < 1": (grid(T=[0]), "key 'suites.smoke.grids[0].T[0]'"),
    "LT pair with T < 1": (grid(LT=[[2, 0]]), "LT"),
    "Q not an integer": (grid(methods=["hybrid"], Q=[2.5]), "grids[0].Q[0]'"),
    "Q < 1": (grid(methods=["hybrid"], Q=[0]), "grids[0].Q[0]'"),
    "negative seed": (
        {"suites": {"smoke": {"seeds": [-1], "grids": grid()["suites"]["smoke"]["grids"]}}},
        "seeds",
    ),
    "seeds not a list": ({"seeds": "zero"}, "seeds"),
    "repeated seeds": ({"seeds": [0, 0]}, "seeds"),
    "unknown CLI key": ({"suites": {"smoke": {"settings": {"all": {"lrr": 0.1}}}}}, "lrr"),
    "unknown top-level key": ({"sweet": "quick"}, "sweet"),
    "bad tgim init": (grid(tgim_init=["eye"]), "tgim_init"),
    "bad on_failure": ({"on_failure": "ignore"}, "on_failure"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_fails_before_any_job(tmp_path, case):
    override, key = BAD_CONFIGS[case]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"suite": "smoke", **override}))
    res = snakemake("--cores", "1", "--configfile", "bad.yaml", cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert key in out, out
    assert "Finished jobid" not in out and not (tmp_path / "results").exists()


def test_unknown_suite_names_the_key(tmp_path):
    res = snakemake("--cores", "1", "--config", "suite=nope", cwd=tmp_path)
    assert res.returncode != 0
    assert "key 'suite'" in res.stderr and "smoke" in res.stderr


def test_repeated_grid_name_names_the_key(tmp_path):
    g = grid()["suites"]["smoke"]["grids"][0]
    (tmp_path / "bad.yaml").write_text(
        yaml.safe_dump({"suite": "smoke", "suites": {"smoke": {"grids": [g, g]}}})
    )
    res = snakemake("--cores", "1", "--configfile", "bad.yaml", cwd=tmp_path)
    assert res.returncode != 0 and "suites.smoke.grids[1].name" in res.stderr


def test_missing_data_root_fails_before_any_job(tmp_path):
    res = snakemake(
        "--cores",
        "1",
        "--config",
        "suite=quick",
        "data_roots={fashion_mnist: /nonexistent/fmnist}",
        cwd=tmp_path,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "data_roots.fashion_mnist" in out and "/nonexistent/fmnist" in out
    assert "Finished jobid" not in out and not (tmp_path / "results" / "quick" / "runs").exists()
    # a dry run only warns
    res = snakemake(
        "-n", "--config", "suite=quick", "data_roots={fashion_mnist: /nonexistent/fmnist}", cwd=tmp_path
    )
    assert res.returncode == 0 and "data_roots.fashion_mnist" in res.stdout + res.stderr


# --------------------------------------------------------------------------------------------------
# The cell wrapper
# --------------------------------------------------------------------------------------------------
CELL = "runs/synthetic/lmht_fmnist_cnn/hybrid-Q4_L2_T2_uniform/seed0"
PARENT = "runs/synthetic/lmht_fmnist_cnn/ann_Q4/seed0"


def run_cell(tmp_path, *args, launcher):
    cmd = [
        sys.executable,
        str(SCRIPTS / "run_cell.py"),
        "--pythonpath",
        str(REPO),
        "--out",
        str(tmp_path / CELL),
        "--log",
        str(tmp_path / CELL / "run.log"),
        "--launcher",
        launcher,
        *args,
        "--",
        "epochs=1",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def ok_parent(tmp_path):
    from workflow_utils import write_metrics

    from lmht.experiment.cell import Cell

    write_metrics(Cell.from_path(PARENT), tmp_path.parent, tmp_path.name, 50.0)


def test_run_cell_records_a_failure(tmp_path):
    ok_parent(tmp_path)
    fail = f"{sys.executable} -c 'import sys; print(\"boom\"); sys.exit(3)'"
    res = run_cell(tmp_path, "--on-failure", "record", launcher=fail)
    assert res.returncode == 0, res.stderr
    metrics = json.loads((tmp_path / CELL / "metrics.json").read_text())
    status = json.loads((tmp_path / CELL / "status.json").read_text())
    assert metrics["status"] == status["status"] == "failed" and metrics["mode"] == "hybrid"
    assert status["returncode"] == 3 and "boom" in status["error"]
    assert metrics["config"] == {"epochs": "1"}


def test_run_cell_fail_mode_propagates_the_error(tmp_path):
    ok_parent(tmp_path)
    fail = f"{sys.executable} -c 'import sys; sys.exit(3)'"
    res = run_cell(tmp_path, "--on-failure", "fail", launcher=fail)
    assert res.returncode == 3
    assert not (tmp_path / CELL / "metrics.json").exists()
    assert json.loads((tmp_path / CELL / "status.json").read_text())["status"] == "failed"


def test_run_cell_skips_a_cell_whose_upstream_failed(tmp_path):
    from lmht.experiment.record import FailureRecord, write_record

    write_record(
        tmp_path / PARENT / "metrics.json", FailureRecord(mode="ann", error="line 1\nValueError: bad")
    )
    never = f"{sys.executable} -c 'raise SystemExit(\"must not run\")'"
    res = run_cell(tmp_path, launcher=never)
    assert res.returncode == 0
    metrics = json.loads((tmp_path / CELL / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "upstream cell failed" in metrics["error"]
    assert "ValueError: bad" in metrics["error"] and PARENT in metrics["error"]


def test_run_cell_success_needs_metrics(tmp_path):
    ok_parent(tmp_path)
    ok_without_metrics = f"{sys.executable} -c 'pass'"
    res = run_cell(tmp_path, launcher=ok_without_metrics)
    assert res.returncode == 0
    assert "wrote no" in json.loads((tmp_path / CELL / "metrics.json").read_text())["error"]


# --------------------------------------------------------------------------------------------------
# Aggregation and plots on fixture cells (fake numbers, including failed and missing cells)
# --------------------------------------------------------------------------------------------------
def fixture_config_file(tmp_path, config) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def aggregated(tmp_path):
    config = fixture_suite(tmp_path / "results")
    out = tmp_path / "tables"
    res = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "aggregate.py"),
            "--config",
            str(fixture_config_file(tmp_path, config)),
            "--suite",
            "fixture",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return tmp_path, out


def test_aggregate_writes_every_table_in_every_format(aggregated):
    _, out = aggregated
    for name in TABLES:
        for ext in ("csv", "md", "tex", "html"):
            assert (out / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    assert "No cells of this kind" in (out / "tableS1.md").read_text()
    assert list(pd.read_csv(out / "tableS1.csv").columns)  # header even when empty
    assert "\\Delta" in (out / "claims.tex").read_text()
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 26 and {"seed", "status", "top1", "tgim_param", "hybrid_init", "variant_tags"} <= set(
        runs
    )


def test_aggregate_verdicts_and_not_run_reasons(aggregated):
    _, out = aggregated
    claims = pd.read_csv(out / "claims.csv")
    claims["reason"] = claims["reason"].fillna("")
    assert len(claims) == len(pd.read_csv(CLAIMS))

    def row(table, dataset, arch, method, L=None, T=None):
        sel = claims[
            (claims["table"] == table)
            & (claims["dataset"] == dataset)
            & (claims["arch"] == arch)
            & (claims["method"] == method)
        ]
        if T is not None:
            sel = sel[(sel["L"] == L) & (sel["T"] == T)]
        assert len(sel) == 1
        return sel.iloc[0]

    headline = row("T3", "CIFAR-100", "ResNet-19", "LM-HT direct")
    assert headline["verdict"] == "reproduced" and headline["n"] == 2
    assert abs(headline["ours_mean"] - 81.65) < 1e-9 and abs(headline["delta"] - (81.65 - 81.76)) < 1e-9
    assert headline["ours_lo"] < 81.65 < headline["ours_hi"]
    assert row("T3", "CIFAR-10", "ResNet-18", "LM-HT direct")["verdict"] == "below"
    failed = row("T3", "CIFAR-100", "ResNet-18", "LM-HT direct")
    assert failed["verdict"] == "not run" and "CUDA out of memory" in failed["reason"]
    assert "not in suite" in row("T3", "ImageNet-1k", "ResNet-34", "LM-HT direct")["reason"]
    assert "not implemented" in row("T3", "CIFAR-100", "ResNet-19", "GLIF direct", 1, 2)["reason"]
    converted = row("T4", "CIFAR-100", "VGG-16", "QCFS Tq=8 converted", 1, 4)
    assert converted["ours_mean"] == 70.0 and converted["verdict"] == "reproduced"
    # Table 1's "M-HT no T-GIM, L=1, T=4" is the IF neuron in the authors' code
    assert row("T1", "ImageNet-subset", "ResNet-18", "M-HT no T-GIM", 1, 4)["reason"].startswith(
        "cell not in"
    )
    failed_cells = (out / "failed_cells.txt").read_text().split()
    assert len(failed_cells) == 4  # 2 seeds of the failed cell + 2 of the missing one
    cells = pd.read_csv(out / "cells.csv")
    missing = cells[cells["cell"] == "reparam-hybrid-Q8_L2_T2_uniform"].iloc[0]
    assert missing["status"] == "not run" and "no metrics.json" in missing["reason"]
    orderings = pd.read_csv(out / "orderings.csv")
    assert set(orderings["verdict"]) <= {"holds", "contradicted", "inconclusive", "not run"}
    assert (orderings["verdict"] == "not run").any()
    decided = orderings[orderings["verdict"] != "not run"]
    assert decided[["n", "delta", "ci_lo", "ci_hi", "p", "m"]].notna().all().all()
    # multi-level claims never use L = 1 LM-HT cells
    assert not decided["a_label"].str.contains("L=1").any()


def test_plots_from_fixture(aggregated):
    tmp_path, _ = aggregated
    out = tmp_path / "figures"
    res = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "plots.py"),
            "--config",
            str(tmp_path / "config.yaml"),
            "--suite",
            "fixture",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 1000, name


def test_aggregate_with_no_cell_run(tmp_path):
    from lmht.experiment.results import aggregate

    config = fixture_suite(tmp_path / "results")
    for path in (tmp_path / "results").rglob("metrics.json"):
        path.unlink()
    aggregate(config, "fixture", CLAIMS, tmp_path / "t")
    assert set(pd.read_csv(tmp_path / "t" / "claims.csv")["verdict"]) == {"not run"}


# --------------------------------------------------------------------------------------------------
# End to end: the smoke suite, one forced cell, a failing stage, the report
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("smoke")
    start = time.perf_counter()
    res = snakemake("--cores", "2", "--config", "suite=smoke", cwd=work, timeout=900)
    elapsed = time.perf_counter() - start
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    print(f"smoke suite: {elapsed:.0f} s")
    return work


@pytest.mark.slow
def test_smoke_suite_end_to_end(smoke_run):
    suite = smoke_run / "results" / "smoke"
    for name in TABLES:
        for ext in ("csv", "md", "tex", "html"):
            assert (suite / "tables" / f"{name}.{ext}").exists()
    for name in FIGURES:
        assert (suite / "figures" / f"{name}.png").stat().st_size > 1000
    from lmht.experiment import suite_cells

    expected = len(suite_cells(yaml.safe_load((REPO / "config.yaml").read_text()), "smoke"))
    cells = pd.read_csv(suite / "tables" / "cells.csv")
    assert len(cells) == expected and set(cells["status"]) == {"ok"}, cells[["cell", "status", "reason"]]
    runs = pd.read_csv(suite / "tables" / "runs.csv")
    assert len(runs) == expected and (suite / "report.html").stat().st_size > 0
    assert (suite / "tables" / "failed_cells.txt").read_text() == ""
    ann = suite / "runs" / "synthetic" / "lmht_fmnist_cnn" / "ann_Q4" / "seed0"
    for f in ("metrics.json", "checkpoint.pt", "status.json", "run.log", "benchmark.tsv", "train_log.csv"):
        assert (ann / f).exists(), f
    claims = pd.read_csv(suite / "tables" / "claims.csv")
    assert set(claims["verdict"]) == {"not run"}  # synthetic data: no paper row applies


@pytest.mark.slow
def test_smoke_report(smoke_run):
    """The DAG builds the suite's report; Snakemake's own report holds the catalog's sections too."""
    page = (smoke_run / "results" / "smoke" / "report.html").read_text()
    for title in SECTIONS.values():
        assert html.escape(title.split(":")[0]) in page
    res = snakemake(
        "--config", "suite=smoke", "--report", "results/smoke/snakemake-report.html", cwd=smoke_run
    )
    assert res.returncode == 0, res.stderr[-3000:]
    page = (smoke_run / "results" / "smoke" / "snakemake-report.html").read_text(errors="replace")
    for title in SECTIONS.values():
        assert title in page


@pytest.mark.slow
def test_rerun_one_cell_by_its_path(smoke_run):
    cell = "results/smoke/runs/synthetic/lmht_fmnist_cnn/direct-if_L1_T4_none/seed0/metrics.json"
    before = os.path.getmtime(smoke_run / cell)
    res = snakemake("--cores", "1", "-f", cell, "--config", "suite=smoke", cwd=smoke_run)
    assert res.returncode == 0, res.stderr[-3000:]
    assert os.path.getmtime(smoke_run / cell) > before
    assert res.stderr.count("rule train_direct:") + res.stdout.count("rule train_direct:") == 1
    assert "rule train_ann" not in res.stdout + res.stderr


@pytest.mark.slow
def test_failed_cells_reach_the_tables(smoke_run):
    """A stage that fails (here: reparam with an invalid setting) is recorded; aggregation still runs."""
    (smoke_run / "broken.yaml").write_text(
        yaml.safe_dump({"suites": {"smoke": {"settings": {"reparam": {"epochs": -1}}}}})
    )
    res = snakemake("--cores", "2", "--config", "suite=smoke", "--configfile", "broken.yaml", cwd=smoke_run)
    assert res.returncode == 0, res.stderr[-3000:]
    tables = smoke_run / "results" / "smoke" / "tables"
    cells = pd.read_csv(tables / "cells.csv")
    reparam = cells[cells["mode"] == "reparam"]
    assert len(reparam) >= 2 and set(reparam["status"]) == {"not run"}
    assert all("epochs" in r for r in reparam["reason"])
    assert set(cells[cells["mode"] != "reparam"]["status"]) == {"ok"}
    assert len((tables / "failed_cells.txt").read_text().split()) == len(reparam)
    orderings = pd.read_csv(tables / "orderings.csv")
    assert set(orderings[orderings["family"] == "reparam_keeps_accuracy"]["verdict"]) == {"not run"}
