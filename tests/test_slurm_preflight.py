"""The Slurm profile and the job-status pre-flight (lmht/slurm.py), without a cluster.

The decision is tested on every combination that matters (sacct works / fails, squeue works / fails,
MinJobAge high / low / unknown, configured sacct / squeue); the probe runs stub `sacct` / `squeue`
commands; the profile is read by `snakemake --profile slurm -n` at the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from workflow_utils import REPO, snakemake

from lmht.slurm import (
    SlurmStatusError,
    StatusProbe,
    check_status_command,
    decide_status_command,
    probe_status_commands,
    squeue_min_job_age,
)

DISABLED = "exit status 1: Slurm accounting storage is disabled"


def probe(sacct=None, squeue=None, age=600):
    return StatusProbe(sacct_error=sacct, squeue_error=squeue, min_job_age=age)


def test_squeue_needs_finished_jobs_listed_until_the_next_poll():
    assert squeue_min_job_age(40) == 200  # the plugin polls at most every 180 s
    assert squeue_min_job_age(100) == 300  # ... and keeps squeue only from 3 x init seconds on


def test_working_sacct_is_kept():
    assert decide_status_command("sacct", 40, probe(age=None)).command == "sacct"
    assert decide_status_command("sacct", 40, probe(age=None)).message is None


def test_failing_sacct_switches_to_squeue_and_says_so():
    decision = decide_status_command("sacct", 40, probe(sacct=DISABLED, age=600))
    assert decision.command == "squeue"
    assert "accounting storage is disabled" in decision.message
    assert (
        "MinJobAge = 600 s >= 200 s" in decision.message
        and "slurm-status-command: squeue" in decision.message
    )


@pytest.mark.parametrize(
    ("configured", "state", "expected"),
    [
        (
            "sacct",
            probe(sacct=DISABLED, age=60),
            "`squeue` would miss finished jobs (MinJobAge = 60 s < 200 s)",
        ),
        ("sacct", probe(sacct=DISABLED, age=None), "MinJobAge = unknown < 200 s"),
        ("sacct", probe(sacct=DISABLED, squeue="exit status 1: timeout"), "`squeue` fails (exit status 1"),
        ("squeue", probe(sacct=DISABLED, age=60), "MinJobAge = 60 s < 200 s; the executor then falls back"),
        ("squeue", probe(squeue="no answer within 30 s"), "`squeue` fails (no answer within 30 s)"),
    ],
)
def test_no_working_status_command_stops_with_what_to_set(configured, state, expected):
    with pytest.raises(SlurmStatusError) as err:
        decide_status_command(configured, 40, state)
    message = str(err.value)
    assert expected in message
    assert "would wait forever" in message
    for remedy in (
        "enable Slurm accounting",
        "MinJobAge >= 200 s",
        "--slurm-status-command squeue",
        "--cores",
    ):
        assert remedy in message


def test_squeue_is_kept_when_it_is_safe_or_the_plugin_falls_back_to_a_working_sacct():
    assert decide_status_command("squeue", 40, probe(sacct=DISABLED, age=600)).command == "squeue"
    assert decide_status_command("squeue", 40, probe(age=60)).command == "squeue"


def stub(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def test_probe_runs_the_plugins_queries(tmp_path, monkeypatch):
    stub(tmp_path, "sacct", 'echo "Slurm accounting storage is disabled" >&2; exit 1')
    stub(tmp_path, "squeue", f'echo "$@" > {tmp_path}/squeue.args')
    stub(tmp_path, "scontrol", 'echo "MinJobAge               = 300 sec"')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    result = probe_status_commands()
    assert result == StatusProbe(sacct_error=DISABLED, squeue_error=None, min_job_age=300)
    assert "--states=all" in (tmp_path / "squeue.args").read_text()  # the plugin's own squeue query


def fake_workflow(plugin="slurm", status_command="sacct"):
    settings = SimpleNamespace(status_command=status_command, init_seconds_before_status_checks=40)
    return SimpleNamespace(executor_plugin=SimpleNamespace(name=plugin), executor_settings=settings)


class Log:
    def __init__(self):
        self.warnings = []

    def warning(self, message):
        self.warnings.append(message)


def test_check_switches_the_executor_setting():
    workflow, log = fake_workflow(), Log()
    check_status_command(workflow, log, probe=lambda: probe(sacct=DISABLED))
    assert workflow.executor_settings.status_command == "squeue"
    assert len(log.warnings) == 1 and "following jobs with `squeue`" in log.warnings[0]


def test_check_ignores_other_executors():
    def never():
        raise AssertionError("probed")

    for plugin in ("local", "slurm-jobstep", "dryrun"):
        check_status_command(fake_workflow(plugin), Log(), probe=never)
    check_status_command(SimpleNamespace(executor_plugin=None), Log(), probe=never)


def test_profile_slurm_sets_no_partition_and_reads_it_from_the_environment():
    """`snakemake --profile slurm` at the repo root (./slurm -> profiles/slurm); dry run of the paper grid."""
    assert (REPO / "slurm").resolve() == (REPO / "profiles" / "slurm").resolve()
    env = {k: v for k, v in os.environ.items() if k not in ("SBATCH_PARTITION", "SBATCH_ACCOUNT")}
    res = snakemake("--profile", "slurm", "-n", "--config", "suite=paper", cwd=REPO, env=env, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "Using profile" in out and "gpu=1" in out
    assert "slurm_partition" not in out and "slurm_account" not in out
    env.update(SBATCH_PARTITION="gpu-a100", SBATCH_ACCOUNT="all")  # "all" is also a Python builtin
    res = snakemake("--profile", "slurm", "-n", "--config", "suite=smoke", cwd=REPO, env=env, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "slurm_partition=gpu-a100, slurm_account=all" in out
