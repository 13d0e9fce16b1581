"""Helpers of the workflow tests: run Snakemake in a subprocess, and fake cell outputs for aggregation.

The fake metrics follow the engine's metrics.json keys (lmht/engine.py) and the cell layout of
workflow/rules/common.smk; they exist only to test aggregation and plots on chosen numbers, including
failed and missing cells. Committed results always come from real runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

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


def cell_entry(root: Path, dataset: str, arch: str, cell: str, seed: int, grids=("fixture",)) -> dict:
    """A manifest entry (as common.smk's cell_manifest makes it) parsed from a cell folder name."""
    method, *rest = cell.split("_")
    entry = {
        "dataset": dataset,
        "arch": arch,
        "cell": cell,
        "method": method,
        "seed": seed,
        "grids": list(grids),
        "neuron": None,
        "L": None,
        "T": None,
        "tgim": "none",
        "Q": None,
        "src": None,
    }
    if method.startswith("ann"):
        entry.update(kind="ann", method="ann", Q=int(rest[0][1:]))
    else:
        L, T, tgim = int(rest[0][1:]), int(rest[1][1:]), rest[2]
        entry.update(L=L, T=T, tgim=tgim)
        if method.startswith("reparam-"):
            entry.update(kind="reparam", src=method[len("reparam-") :])
        else:
            kind, _, arg = method.partition("-")
            entry["kind"] = kind
            if arg.startswith("Q"):
                entry["Q"] = int(arg[1:])
            else:
                entry["neuron"] = arg
    entry["path"] = str(root / "runs" / dataset / arch / cell / f"seed{seed}" / "metrics.json")
    return entry


def write_metrics(entry: dict, top1: float, **extra) -> None:
    """A successful cell: metrics.json with the engine's keys, and a tgim.json for LM-HT cells."""
    T = entry["T"] or 1
    curve = extra.pop("top1_per_step", None) or [top1 - 2.0 * (T - t) for t in range(1, T + 1)]
    metrics = {
        "mode": entry["kind"],
        "top1": top1,
        "best_top1": top1,
        "top1_per_step": curve,
        "sops": 1.0e8 * T,
        "energy_mj": 0.09 * T,
        "params": 1.0e5,
        "wall_time_s": 1.0,
        "device": "cpu",
        "config": {},
        "firing_rate": {"features.1": 0.2, "features.4": 0.15, "classifier.1": 0.1},
        "history": [{"epoch": 1, "test_acc": top1 - 5}, {"epoch": 2, "test_acc": top1}],
        **extra,
    }
    path = Path(entry["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics))
    if entry.get("tgim") not in (None, "none") and T > 1:
        eye = [[1.0 if i == j else 0.0 for j in range(T)] for i in range(T)]
        uniform = [[1.0 / T] * T for _ in range(T)]
        mat = eye if entry["tgim"] == "identity" else uniform
        tgim = {
            name: {"tgim": mat, "leak": 1.0, "L": entry["L"], "T": T} for name in ("features.1", "features.4")
        }
        path.with_name("tgim.json").write_text(json.dumps(tgim))


def write_failure(entry: dict, error: str) -> None:
    """A failed cell as run_cell.py records it (on_failure: record)."""
    path = Path(entry["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"status": "failed", "mode": entry["kind"], "returncode": 1, "error": error}
    path.write_text(json.dumps(record))
    path.with_name("status.json").write_text(json.dumps(record))


def fixture_suite(root: Path, seeds=(0, 1)) -> list[dict]:
    """A small suite on the paper's datasets with chosen numbers; returns its manifest.

    cifar100/resnet19 direct LM-HT L2T2: ~81.7 (paper 81.76: reproduced); cifar10/resnet18: 90 (paper 96.25:
    not reproduced); cifar100/resnet18 direct LM-HT: failed; cifar100/vgg16 Q8 ANN, conversion, hybrid L2T2;
    IF/M-HT/T-GIM/reparam cells on cifar100/resnet19; the reparam cell of vgg16 hybrid is missing.
    """
    manifest = []

    def add(dataset, arch, cell, value=None, failure=None, missing=False, **extra):
        for seed in seeds:
            e = cell_entry(root, dataset, arch, cell, seed)
            manifest.append(e)
            if missing:
                continue
            if failure:
                write_failure(e, failure)
            else:
                write_metrics(e, value + 0.1 * seed, **extra)

    add("cifar100", "lmht_resnet19", "direct-lmht_L2_T2_uniform", 81.6)
    add("cifar100", "lmht_resnet19", "direct-lmht_L2_T2_identity", 80.1)
    add("cifar100", "lmht_resnet19", "direct-lmht_L1_T4_uniform", 79.0)
    add("cifar100", "lmht_resnet19", "direct-lmht_L4_T1_uniform", 78.0)
    add("cifar100", "lmht_resnet19", "direct-mht_L2_T2_none", 80.0)
    add("cifar100", "lmht_resnet19", "direct-if_L1_T4_none", 77.0)
    add(
        "cifar100",
        "lmht_resnet19",
        "reparam-direct-lmht_L2_T2_uniform",
        81.5,
        reparam={
            "before": {"top1": 81.6, "sops": 2e8},
            "after": {"top1": 81.5, "sops": 2e8},
            "agreement": 99.0,
        },
    )
    add("cifar10", "lmht_resnet18", "direct-lmht_L2_T2_uniform", 90.0)
    add(
        "cifar100",
        "lmht_resnet18",
        "direct-lmht_L2_T2_uniform",
        failure="Traceback ...\nRuntimeError: CUDA out of memory",
    )
    add("cifar100", "lmht_vgg16", "ann_Q8", 77.0)
    add(
        "cifar100",
        "lmht_vgg16",
        "convert-Q8_L1_T8_none",
        74.0,
        top1_per_step=[10.0, 64.0, 66.0, 70.0, 71.0, 72.0, 73.0, 74.0],
    )
    add("cifar100", "lmht_vgg16", "hybrid-Q8_L2_T2_uniform", 76.2, init_top1=70.0, ann_top1=77.0)
    add("cifar100", "lmht_vgg16", "reparam-hybrid-Q8_L2_T2_uniform", missing=True)
    return manifest
