"""The smoke suite through a real one-node Slurm cluster (snakemake-executor-plugin-slurm).

Needs root and the Debian packages slurm-wlm and munge: the module fixture installs them with apt-get
when they are missing (and skips with the reason when that is impossible), starts the cluster with
.ci/slurm-up.sh and stops the daemons it started with .ci/slurm-down.sh (by pid files). The workflow runs
in a temporary directory with profiles/slurm-local (squeue status checks, partition main, no account).
About 2-3 minutes, mostly the executor's status polling.
"""

import os
import shutil
import subprocess
import time

import pandas as pd
import pytest
from workflow_utils import REPO, SNAKEMAKE, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scontrol")


def have_slurm() -> bool:
    return all(shutil.which(b) for b in SLURM_BINARIES)


def try_install() -> str:
    """Install slurm-wlm and munge with apt-get; return why not when impossible."""
    if not shutil.which("apt-get"):
        return "no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if res.returncode != 0:
            return f"{' '.join(cmd)} failed: {res.stderr.strip()[-300:]}"
    return "" if have_slurm() else "slurm binaries still missing after apt-get install"


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("needs root to start a local Slurm cluster (.ci/slurm-up.sh)")
    if not have_slurm():
        why = try_install()
        if why:
            pytest.skip(
                f"Slurm is not installed and cannot be installed ({why}); apt-get install slurm-wlm munge"
            )
    up = subprocess.run(
        ["bash", str(REPO / ".ci" / "slurm-up.sh")], capture_output=True, text=True, timeout=180
    )
    if up.returncode != 0:
        subprocess.run(["bash", str(REPO / ".ci" / "slurm-down.sh")], capture_output=True, timeout=120)
        pytest.skip(f"could not start the local Slurm cluster: {up.stderr.strip()[-500:]}")
    try:
        yield up.stdout.strip()
    finally:
        down = subprocess.run(
            ["bash", str(REPO / ".ci" / "slurm-down.sh")], capture_output=True, text=True, timeout=120
        )
        assert down.returncode == 0, down.stderr


def test_profile_slurm_is_found_from_the_repository_root(cluster):
    """`snakemake --profile slurm` at the repo root (./slurm -> profiles/slurm); dry run of the paper grid."""
    assert (REPO / "slurm").resolve() == (REPO / "profiles" / "slurm").resolve()
    res = subprocess.run(
        [SNAKEMAKE, "--profile", "slurm", "-n", "--config", "suite=paper"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "Using profile" in out and "slurm_partition=" in out and "gpu=1" in out


def test_smoke_suite_on_slurm(cluster, tmp_path):
    start = time.perf_counter()
    res = snakemake(
        "--profile",
        str(REPO / "profiles" / "slurm-local"),
        "--config",
        "suite=smoke",
        cwd=tmp_path,
        timeout=1200,
        slurm=True,
    )
    elapsed = time.perf_counter() - start
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]
    print(f"smoke suite on Slurm: {elapsed:.0f} s")
    assert out.count("SLURM jobid") >= 13, "every cell and dataset_info should be a Slurm job"
    suite = tmp_path / "results" / "smoke"
    cells = pd.read_csv(suite / "tables" / "cells.csv")
    assert len(cells) == 12 and set(cells["status"]) == {"ok"}, cells[["cell", "status", "reason"]]
    for name in ("claims", "table4", "orderings"):
        assert (suite / "tables" / f"{name}.html").exists()
    assert (suite / "figures" / "accuracy_vs_steps.png").exists()
    queue = subprocess.run(["squeue", "-h"], capture_output=True, text=True)
    assert queue.stdout.strip() == "", "jobs left in the queue"
