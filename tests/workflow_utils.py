"""Helpers of the workflow tests: run Snakemake in a subprocess, and a fixture suite of cells.

The fixture cells are written with the engine's own writer (``lmht.experiment.record``: the same
``RunRecord``/``FailureRecord`` and ``write_record`` the engine and run_cell.py use), at the paths the
suite's grids expand to (``lmht.experiment.grid``); only their numbers are chosen, to test aggregation
and plots on known values, including failed and missing cells. Committed results come from real runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from lmht.experiment.cell import Cell
from lmht.experiment.grid import suite_cells
from lmht.experiment.record import EvalSummary, FailureRecord, ReparamResult, RunRecord, write_record

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SCRIPTS = REPO / "workflow" / "scripts"
CLAIMS = REPO / "workflow" / "resources" / "paper-claims.csv"


def _no_scontrol_dir() -> str:
    """A folder with an `scontrol` that fails at once.

    Snakemake imports its Slurm plugin at start-up, which runs `scontrol show config`; where a Slurm
    client is configured but no controller answers (e.g. after tests/test_slurm.py), that call waits
    9 s for a timeout. Local-executor tests put this folder first on PATH to skip that wait.
    """
    folder = Path(tempfile.gettempdir()) / "lmht-test-no-scontrol"
    stub = folder / "scontrol"
    if not stub.exists():
        folder.mkdir(exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 1\n")
        stub.chmod(0o755)
    return str(folder)


def snakemake(
    *args: str,
    cwd: Path | str | None = None,
    timeout: float = 600,
    env: dict | None = None,
    slurm: bool = False,
) -> subprocess.CompletedProcess:
    """`snakemake -s REPO/Snakefile ARGS` in a subprocess (output captured as text).

    slurm=False (local executor) hides `scontrol` (see _no_scontrol_dir); pass slurm=True to use Slurm.
    """
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args]
    full_env = {**os.environ, **(env or {})}
    if not slurm:
        full_env["PATH"] = os.pathsep.join([_no_scontrol_dir(), full_env.get("PATH", "")])
    return subprocess.run(cmd, cwd=cwd or REPO, capture_output=True, text=True, timeout=timeout, env=full_env)


def _grid(name, datasets, archs, methods, **kw):
    return {"name": name, "datasets": datasets, "archs": archs, "methods": methods, **kw}


def fixture_config(results: Path | str, seeds=(0, 1)) -> dict:
    """A workflow config whose suite `fixture` expands to the cells of :func:`fixture_suite`."""
    grids = [
        _grid(
            "headline",
            ["cifar100"],
            ["lmht_resnet19"],
            ["direct-lmht", "direct-mht", "direct-if", "reparam-direct"],
            LT=[[2, 2]],
        ),
        _grid(
            "budget",
            ["cifar100"],
            ["lmht_resnet19"],
            ["direct-lmht"],
            LT=[[1, 4], [4, 1]],
            single_level="lmht",
        ),
        _grid("tgim", ["cifar100"], ["lmht_resnet19"], ["direct-lmht"], LT=[[2, 2]], tgim_init=["identity"]),
        _grid("others", ["cifar10", "cifar100"], ["lmht_resnet18"], ["direct-lmht"], LT=[[2, 2]]),
        _grid("hybrid", ["cifar100"], ["lmht_vgg16"], ["convert", "reparam-hybrid"], LT=[[2, 2]], Q=[8]),
    ]
    return {
        "suite": "fixture",
        "results": str(results),
        "seeds": None,
        "tolerance": 1.0,
        "paper_claims": str(CLAIMS),
        "data_roots": {},
        "suites": {"fixture": {"seeds": list(seeds), "convert_steps": 8, "grids": grids}},
    }


def write_metrics(cell: Cell, results, suite: str, top1: float, **extra) -> None:
    """A successful cell: its run record (and a tgim.json for LM-HT cells), written as the engine does."""
    T = cell.T or 1
    curve = extra.pop("top1_per_step", None) or [top1 - 2.0 * (T - t) for t in range(1, T + 1)]
    record = RunRecord(
        top1=top1,
        top1_per_step=curve,
        firing_rate={"features.1": 0.2, "features.4": 0.15, "classifier.1": 0.1},
        sops=1.0e8 * T,
        energy_mj=0.09 * T,
        mode=cell.mode,
        kind="ann" if cell.mode == "ann" else "snn",
        best_top1=top1,
        history=[{"epoch": 1, "test_acc": top1 - 5}, {"epoch": 2, "test_acc": top1}],
        params=100000,
        wall_time_s=1.0,
        device="cpu",
        **extra,
    )
    path = cell.path(results, suite)
    write_record(path, record)
    if cell.tgim != "none" and T > 1:
        eye = [[1.0 if i == j else 0.0 for j in range(T)] for i in range(T)]
        uniform = [[1.0 / T] * T for _ in range(T)]
        mat = eye if cell.tgim == "identity" else uniform
        tgim = {
            name: {"tgim": mat, "leak": 1.0, "L": cell.L, "T": T} for name in ("features.1", "features.4")
        }
        path.with_name("tgim.json").write_text(json.dumps(tgim))


def write_failure(cell: Cell, results, suite: str, error: str) -> None:
    """A failed cell as run_cell.py records it (on_failure: record)."""
    record = FailureRecord(mode=cell.mode, error=error, returncode=1)
    path = cell.path(results, suite)
    write_record(path, record)
    write_record(path.with_name("status.json"), record)


def fixture_suite(results: Path, seeds=(0, 1)) -> dict:
    """Write the fixture suite's cells with chosen numbers; return its workflow config.

    cifar100/resnet19 direct LM-HT L2T2: ~81.7 (paper 81.76: reproduced); cifar10/resnet18: 90 (paper 96.25:
    not reproduced); cifar100/resnet18 direct LM-HT: failed; cifar100/vgg16 Q8 ANN, conversion, hybrid L2T2;
    IF/M-HT/T-GIM/reparam cells on cifar100/resnet19; the reparam cell of vgg16 hybrid is missing.
    """
    config = fixture_config(results, seeds)
    numbers = {
        ("cifar100", "lmht_resnet19", "direct-lmht_L2_T2_uniform"): 81.6,
        ("cifar100", "lmht_resnet19", "direct-lmht_L2_T2_identity+direct-tgim"): 80.1,
        ("cifar100", "lmht_resnet19", "direct-lmht_L1_T4_uniform"): 79.0,
        ("cifar100", "lmht_resnet19", "direct-lmht_L4_T1_uniform"): 78.0,
        ("cifar100", "lmht_resnet19", "direct-mht_L2_T2_none"): 80.0,
        ("cifar100", "lmht_resnet19", "direct-if_L1_T4_none"): 77.0,
        ("cifar100", "lmht_resnet19", "reparam-direct-lmht_L2_T2_uniform"): 81.5,
        ("cifar10", "lmht_resnet18", "direct-lmht_L2_T2_uniform"): 90.0,
        ("cifar100", "lmht_vgg16", "ann_Q8"): 77.0,
        ("cifar100", "lmht_vgg16", "convert-Q8_L1_T8_none"): 74.0,
        ("cifar100", "lmht_vgg16", "hybrid-Q8_L2_T2_uniform"): 76.2,
    }
    extras = {
        "reparam-direct-lmht_L2_T2_uniform": lambda: {
            "reparam": ReparamResult(
                before=EvalSummary(top1=81.6, sops=2e8),
                after=EvalSummary(top1=81.5, sops=2e8),
                agreement=99.0,
                delta_top1=-0.1,
                T_after=4,
            )
        },
        "convert-Q8_L1_T8_none": lambda: {"top1_per_step": [10.0, 64.0, 66.0, 70.0, 71.0, 72.0, 73.0, 74.0]},
        "hybrid-Q8_L2_T2_uniform": lambda: {"init_top1": 70.0, "ann_top1": 77.0},
    }
    cells = suite_cells(config, "fixture")
    for cell in cells:
        key = (cell.dataset, cell.arch, cell.name)
        if key == ("cifar100", "lmht_resnet18", "direct-lmht_L2_T2_uniform"):
            write_failure(cell, results, "fixture", "Traceback ...\nRuntimeError: CUDA out of memory")
        elif key in numbers:
            extra = extras.get(cell.name, dict)()
            write_metrics(cell, results, "fixture", numbers[key] + 0.1 * cell.seed, **extra)
    assert {(c.dataset, c.arch, c.name) for c in cells} == {
        *numbers,
        ("cifar100", "lmht_resnet18", "direct-lmht_L2_T2_uniform"),
        ("cifar100", "lmht_vgg16", "reparam-hybrid-Q8_L2_T2_uniform"),
    }
    return config
