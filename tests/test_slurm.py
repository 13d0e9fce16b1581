"""The user's literal command on a real one-node Slurm cluster, with and without job accounting.

    snakemake --cores 8 --profile slurm --config suite=smoke

runs at the root of a fresh copy of this repository (its tracked and untracked, non-ignored files: a
clone with the working tree's changes), with the unedited profile (found through the `./slurm` link),
on the cluster of .ci/slurm-up.sh: munged, MariaDB, slurmdbd, slurmctld, slurmd, so that `sacct` works
as on a real site. Then the same cluster without accounting (`slurm-up.sh --no-accounting`): `sacct`
fails, and the workflow's start-up check (lmht/slurm.py) switches the executor to squeue and says so,
instead of waiting forever for the first job.

Needs root and the Debian packages slurm-wlm, munge, slurmdbd and mariadb-server: the module fixture
installs them with apt-get when they are missing (and skips with the reason when that is impossible),
and stops every daemon it started with .ci/slurm-down.sh (by pid files). A lock (/run/lmht-slurm.lock)
makes a concurrent run of these tests from another checkout wait: a machine has one slurm.conf. About 7
minutes, mostly the executor's status polling (first check after 40 s, then every 40-180 s).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from workflow_utils import REPO

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PACKAGES = {  # binary -> Debian package
    "munged": "munge",
    "slurmctld": "slurm-wlm",
    "slurmd": "slurm-wlm",
    "sbatch": "slurm-wlm",
    "squeue": "slurm-wlm",
    "scontrol": "slurm-wlm",
    "sacct": "slurm-wlm",
    "slurmdbd": "slurmdbd",
    "sacctmgr": "slurm-wlm",
    "mariadbd": "mariadb-server",
}
USER_COMMAND = ["snakemake", "--cores", "8", "--profile", "slurm", "--config", "suite=smoke"]
SWITCH_MESSAGE = "following jobs with `squeue` instead"
LOCK_FILE = "/run/lmht-slurm.lock"
LOCK_WAIT = 1800.0  # seconds


def missing_packages() -> list[str]:
    return sorted({pkg for binary, pkg in PACKAGES.items() if not shutil.which(binary)})


def try_install(packages: list[str]) -> str:
    """Install the Debian packages with apt-get; return why not when impossible."""
    if not shutil.which("apt-get"):
        return "no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if res.returncode != 0:
            return f"{' '.join(cmd)} failed: {res.stderr.strip()[-300:]}"
    still = missing_packages()
    return f"still missing after apt-get install: {', '.join(still)}" if still else ""


def slurm_up(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / ".ci" / "slurm-up.sh"), *args], capture_output=True, text=True, timeout=300
    )


def slurm_down() -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / ".ci" / "slurm-down.sh")], capture_output=True, text=True, timeout=180
    )


@contextlib.contextmanager
def exclusive_cluster(wait: float = LOCK_WAIT):
    """Hold LOCK_FILE: a second run of these tests on the same machine (another checkout) waits for the
    first instead of reconfiguring or stopping its daemons (there is one slurm.conf per machine)."""
    with open(LOCK_FILE, "w") as fh:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"another test run has held the local Slurm cluster ({LOCK_FILE}) for {wait:.0f} s"
                    )
                time.sleep(5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("needs root to start a local Slurm cluster (.ci/slurm-up.sh)")
    missing = missing_packages()
    if missing:
        why = try_install(missing)
        if why:
            pytest.skip(
                f"cannot install {' '.join(missing)} ({why}); run bash scripts/setup.sh --test as root"
            )
    with exclusive_cluster():
        up = slurm_up()
        if up.returncode != 0:
            slurm_down()
            pytest.skip(f"could not start the local Slurm cluster: {up.stderr.strip()[-500:]}")
        try:
            yield up.stdout.strip()
        finally:
            down = slurm_down()
            assert down.returncode == 0, down.stderr


def fresh_copy(dest: Path) -> Path:
    """The repository's tracked and untracked, non-ignored files (the `slurm` link included) in dest."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, (f.decode() for f in files)):
        src, dst = REPO / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
    return dest


def run_user_command(cwd: Path, *targets: str, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    """The literal user command (targets after `--`), with the virtual env's snakemake first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("SBATCH_PARTITION", "SBATCH_ACCOUNT")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = [*USER_COMMAND, *(["--", *targets] if targets else [])]
    start = time.perf_counter()
    try:
        res = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as err:
        out = (err.stdout or b"").decode(errors="replace") + (err.stderr or b"").decode(errors="replace")
        pytest.fail(f"`{' '.join(command)}` did not finish within {timeout:.0f} s (a hang?):\n{out[-3000:]}")
    return res, time.perf_counter() - start


def submitted_job_ids(out: str) -> list[str]:
    return [line.split("SLURM jobid ")[1].split()[0] for line in out.splitlines() if "SLURM jobid " in line]


def test_user_command_completes_the_smoke_suite_with_accounting(cluster, tmp_path):
    up = slurm_up()  # accounting on, also when the no-accounting test ran first
    assert up.returncode == 0, up.stderr
    repo = fresh_copy(tmp_path / "lmht")
    res, seconds = run_user_command(repo, timeout=1200)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]
    print(f"smoke suite through Slurm with accounting: {seconds:.0f} s")
    assert "Using profile" in out and "slurm" in out
    assert SWITCH_MESSAGE not in out, "sacct works here: no switch to squeue"
    import yaml

    from lmht.experiment import suite_cells

    expected = len(suite_cells(yaml.safe_load((REPO / "config.yaml").read_text()), "smoke"))
    jobs = submitted_job_ids(out)
    assert len(jobs) >= expected + 1, "every cell and dataset_info should be a Slurm job"
    # the executor followed them through the accounting database
    acct = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-o", "JobIdRaw,State", "-j", ",".join(jobs)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    states = dict(line.split("|") for line in acct.stdout.split())
    assert acct.returncode == 0 and {states.get(j) for j in jobs} == {"COMPLETED"}, acct.stdout + acct.stderr
    suite = repo / "results" / "smoke"
    cells = pd.read_csv(suite / "tables" / "cells.csv")
    assert len(cells) == expected and set(cells["status"]) == {"ok"}, cells[["cell", "status", "reason"]]
    for name in ("claims", "table4", "orderings"):
        assert (suite / "tables" / f"{name}.html").exists()
    assert (suite / "figures" / "accuracy_vs_steps.png").exists()
    queue = subprocess.run(["squeue", "-h"], capture_output=True, text=True)
    assert queue.stdout.strip() == "", "jobs left in the queue"


def test_without_accounting_the_run_switches_to_squeue_and_says_so(cluster, tmp_path):
    up = slurm_up("--no-accounting")
    assert up.returncode == 0, up.stderr
    assert subprocess.run(["sacct", "-X", "-n"], capture_output=True).returncode != 0, "sacct should fail"
    repo = fresh_copy(tmp_path / "lmht")
    target = "results/smoke/data/synthetic.json"  # one Slurm job: the check, not the suite, is tested
    res, seconds = run_user_command(repo, target, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]
    print(f"one job through Slurm without accounting: {seconds:.0f} s")
    assert SWITCH_MESSAGE in out and "Slurm accounting storage is disabled" in out
    assert len(submitted_job_ids(out)) == 1 and (repo / target).is_file()
