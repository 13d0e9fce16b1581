"""Start-up check of the Slurm executor's job-status command: a run through Slurm never hangs silently.

snakemake-executor-plugin-slurm (2.8) follows its jobs with ``sacct`` (Slurm accounting) or ``squeue``
(the controller's job list). When that query fails — ``sacct`` on a cluster without accounting storage
answers "Slurm accounting storage is disabled" — the plugin logs the failure at debug level only and
never reports a job as finished, so the workflow waits forever after its first job. ``squeue`` works
without accounting, but only shows a finished job for ``MinJobAge`` seconds (slurm.conf); the plugin
polls at most every :data:`PLUGIN_MAX_POLL_SECONDS` and itself falls back from squeue to sacct when
``MinJobAge`` < 3 × ``--slurm-init-seconds-before-status-checks``.

:func:`check_status_command`, called from the Snakefile's ``onstart`` (after the DAG is built, before
the first job; not in dry runs), runs the query the plugin will run and then

* keeps the configured command when it works;
* else switches the executor to ``squeue`` when squeue works and ``MinJobAge`` is at least
  :func:`squeue_min_job_age`, and says so (a warning naming the profile key that makes it permanent);
* else stops the run with a :class:`SlurmStatusError` that says what fails and what to set.

Torch-free: imported by the Snakefile at parse time; needs Snakemake and, for a Slurm run, its Slurm
executor plugin.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from snakemake_interface_common.exceptions import WorkflowError

#: The plugin's cap on the time between two status checks (seconds; ``max_sleep_time`` in 2.8).
PLUGIN_MAX_POLL_SECONDS = 180
#: The plugin's default of ``--slurm-init-seconds-before-status-checks``.
PLUGIN_INIT_SECONDS = 40
#: Seconds to wait for one query command.
QUERY_TIMEOUT = 30
PROBE_NAME = "lmht-status-preflight"  # a job name no job has: the queries list nothing


class SlurmStatusError(WorkflowError):
    """Job status cannot be queried on this cluster; the message says what fails and what to set.

    A ``WorkflowError``, so that Snakemake prints the message (no traceback) and stops.
    """


@dataclass(frozen=True)
class StatusProbe:
    """What the status queries answered: ``None`` for a command that works, else its error text."""

    sacct_error: str | None
    squeue_error: str | None
    min_job_age: int | None  # seconds, from `scontrol show config`; None when unknown


@dataclass(frozen=True)
class StatusDecision:
    """The status command to use, and the message to log when it differs from the configured one."""

    command: str
    message: str | None = None


def squeue_min_job_age(init_seconds: int = PLUGIN_INIT_SECONDS) -> int:
    """Smallest ``MinJobAge`` (s) for which following jobs with squeue is safe.

    A finished job must still be listed at the next poll (at most :data:`PLUGIN_MAX_POLL_SECONDS`
    later, plus 20 s of margin), and the plugin keeps squeue only from 3 × ``init_seconds`` on.
    """
    return max(3 * init_seconds, PLUGIN_MAX_POLL_SECONDS + 20)


def _query_commands() -> dict[str, str]:
    """The plugin's own sacct and squeue status queries (so the check runs exactly what it will run)."""
    from snakemake_executor_plugin_slurm.job_status_query import (
        query_job_status_sacct,
        query_job_status_squeue,
    )

    return {"sacct": query_job_status_sacct(PROBE_NAME), "squeue": query_job_status_squeue(PROBE_NAME)}


def _run_query(command: str, timeout: float) -> str | None:
    """None when ``command`` exits with 0 within ``timeout`` s, else a one-line reason."""
    try:
        res = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return f"{shlex.split(command)[0]}: command not found"
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:g} s"
    if res.returncode == 0:
        return None
    text = " ".join((res.stderr or res.stdout).split())
    return f"exit status {res.returncode}: {text[:300] or 'no output'}"


def probe_status_commands(
    commands: dict[str, str] | None = None,
    min_job_age: Callable[[], int | None] | None = None,
    timeout: float = QUERY_TIMEOUT,
) -> StatusProbe:
    """Run the sacct and squeue status queries and read ``MinJobAge`` (defaults: the plugin's)."""
    if commands is None:
        commands = _query_commands()
    if min_job_age is None:
        from snakemake_executor_plugin_slurm.job_status_query import get_min_job_age as min_job_age
    return StatusProbe(
        sacct_error=_run_query(commands["sacct"], timeout),
        squeue_error=_run_query(commands["squeue"], timeout),
        min_job_age=min_job_age(),
    )


def _remedies(needed: int, probe: StatusProbe) -> str:
    age = "unknown" if probe.min_job_age is None else f"{probe.min_job_age} s"
    return (
        "Fix one of: (1) enable Slurm accounting (slurmdbd; ask the cluster's administrators) so that "
        "sacct works; (2) follow jobs with squeue: needs MinJobAge >= "
        f"{needed} s in slurm.conf (now {age}), then add `slurm-status-command: squeue` to "
        "profiles/slurm/config.yaml or pass --slurm-status-command squeue; (3) run without Slurm: "
        "snakemake --cores N (no --profile slurm)."
    )


def decide_status_command(configured: str, init_seconds: int, probe: StatusProbe) -> StatusDecision:
    """The status command that lets the executor see jobs finish (logic in the module docstring).

    Raises :class:`SlurmStatusError` when neither sacct nor squeue can be relied on.
    """
    needed = squeue_min_job_age(init_seconds)
    squeue_safe = probe.squeue_error is None and probe.min_job_age is not None and probe.min_job_age >= needed
    if configured == "sacct":
        if probe.sacct_error is None:
            return StatusDecision("sacct")
        if squeue_safe:
            return StatusDecision(
                "squeue",
                f"Slurm job status: `sacct` fails ({probe.sacct_error}); following jobs with `squeue` "
                f"instead (MinJobAge = {probe.min_job_age} s >= {needed} s keeps finished jobs listed). "
                "Add `slurm-status-command: squeue` to the profile (or pass --slurm-status-command "
                "squeue) to choose it yourself.",
            )
        problems = [f"`sacct` fails ({probe.sacct_error})"]
        if probe.squeue_error is not None:
            problems.append(f"`squeue` fails ({probe.squeue_error})")
        else:
            age = "unknown" if probe.min_job_age is None else f"{probe.min_job_age} s"
            problems.append(f"`squeue` would miss finished jobs (MinJobAge = {age} < {needed} s)")
    elif configured == "squeue":
        if probe.squeue_error is None and (squeue_safe or probe.sacct_error is None):
            # below the plugin's threshold it falls back to sacct by itself, which works here
            return StatusDecision("squeue")
        problems = []
        if probe.squeue_error is not None:
            problems.append(f"`squeue` fails ({probe.squeue_error})")
        else:
            age = "unknown" if probe.min_job_age is None else f"{probe.min_job_age} s"
            problems.append(
                f"`squeue` would miss finished jobs (MinJobAge = {age} < {needed} s; the executor then "
                "falls back to sacct)"
            )
        if probe.sacct_error is not None:
            problems.append(f"`sacct` fails ({probe.sacct_error})")
    else:
        raise SlurmStatusError(f"unknown Slurm status command {configured!r}: expected 'sacct' or 'squeue'")
    raise SlurmStatusError(
        "Slurm job status cannot be queried, so the run would wait forever for its first job: "
        + "; ".join(problems)
        + ". "
        + _remedies(needed, probe)
    )


def uses_slurm_executor(workflow) -> bool:
    """Whether this Snakemake run submits its jobs with the Slurm executor (not inside a job)."""
    plugin = getattr(workflow, "executor_plugin", None)
    return plugin is not None and plugin.name == "slurm"


def check_status_command(workflow, logger, probe: Callable[[], StatusProbe] = probe_status_commands) -> None:
    """Pre-flight of a Slurm run (Snakefile ``onstart``): keep, switch or stop (module docstring).

    Does nothing for other executors. A switch sets the executor's ``status_command`` setting, which the
    plugin reads at every status check, and logs a warning.
    """
    if not uses_slurm_executor(workflow):
        return
    settings = workflow.executor_settings
    configured = getattr(settings, "status_command", None) or "sacct"
    init_seconds = getattr(settings, "init_seconds_before_status_checks", None) or PLUGIN_INIT_SECONDS
    decision = decide_status_command(configured, init_seconds, probe())
    if decision.command != configured:
        settings.status_command = decision.command
    if decision.message:
        logger.warning(decision.message)
