"""Run one cell of the workflow: the ``lmht`` CLI, with its outcome recorded next to its outputs.

Called by the cell rules (workflow/rules/cells.smk)::

    run_cell.py --out .../runs/DATASET/ARCH/CELL/seedN --log LOG --on-failure record|fail
                --launcher "python -m lmht" -- key=value ...

The cell folder names the cell (``lmht.experiment.cell``), hence its mode and the cell it builds on. It
runs ``LAUNCHER MODE --out DIR key=value ...`` with stdout/stderr appended to LOG and writes
``DIR/status.json`` (the :class:`lmht.experiment.record.FailureRecord` fields: status ok|failed, return
code, error tail, command, wall time). On failure:

* ``--on-failure record`` (default of the workflow): ``DIR/metrics.json`` becomes that failure record
  and the script exits 0, so the Snakemake job succeeds and aggregation still runs; the tables report
  the cell as "not run" with the error.
* ``--on-failure fail``: exits with the CLI's return code (Snakemake retries and ``--keep-going`` apply).

A cell whose parent cell recorded a failure is recorded as failed without running. Stale checkpoints in
DIR are removed before a fresh run so that a forced rerun trains from scratch; a job that Slurm requeued
(``SLURM_RESTART_COUNT`` > 0) keeps them and the CLI resumes (``resume=true``). Needs only the standard
library and the torch-free ``lmht.experiment`` (found through ``--pythonpath``, the repository root).

One run per cell folder: the script takes an exclusive ``flock`` on ``DIR/.cell.lock`` (holding the
host, pid, start time and working directory of the run) before it touches anything in DIR, and the
CLI process inherits it, so the lock lasts as long as the training does, even if this script is
killed. A second run on the same folder, e.g. a Snakemake started from another working directory on
the same results, fails at once (exit status 75, nothing in DIR changed) with a message naming the
run that holds it. The kernel releases the lock when those processes end: nothing to clean up after
a kill. Orphan ``*.tmp`` files of atomic writes interrupted by a kill are removed when the lock is
taken. (On NFS, ``flock`` needs a client that maps it to NFS locks, as Linux does since 2.6.12.)
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

ERROR_TAIL_LINES = 30
LOCK_FILE = ".cell.lock"
#: exit status when another run holds the cell folder (EX_TEMPFAIL: try again later)
EXIT_LOCKED = 75


class CellLocked(RuntimeError):
    """Another run holds the cell folder's lock; the message names it."""


def acquire_cell_lock(out: Path, command: str) -> int:
    """Take the exclusive lock of cell folder ``out``; return its file descriptor (keep it open).

    Raises:
        CellLocked: another process holds it (the message gives its host, pid, start and directory).
    """
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise
        try:
            holder = json.loads(os.pread(fd, 1 << 16, 0) or b"{}")
        except ValueError:
            holder = {}
        os.close(fd)
        who = ", ".join(
            f"{key} {holder[key]}"
            for key in ("host", "pid", "started", "cwd", "slurm_job_id")
            if holder.get(key) is not None
        )
        raise CellLocked(
            f"cell folder {out} is in use by another run ({who or 'no details recorded'}); this run did "
            "not start and changed nothing. Wait for that run to end (its lock goes when its processes "
            "exit; after a kill there is nothing to remove)"
        ) from None
    info = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cwd": os.getcwd(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "command": command,
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    return fd


def remove_orphan_tmp_files(out: Path) -> list[str]:
    """Delete ``*.tmp`` files (left by atomic writes that a kill interrupted) in ``out``; return names."""
    removed = []
    for name in sorted(os.listdir(out)):
        path = out / name
        if name.endswith(".tmp") and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(name)
    return removed


def tail(path: Path, lines: int = ERROR_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="cell folder .../runs/DATASET/ARCH/CELL/seedN")
    p.add_argument("--log", required=True, type=Path, help="log file (stdout and stderr of the CLI)")
    p.add_argument("--on-failure", choices=["record", "fail"], default="record")
    p.add_argument(
        "--launcher",
        default=f"{shlex.quote(sys.executable)} -m lmht",
        help="command that starts the lmht CLI",
    )
    p.add_argument("--preset", default="", help="packaged preset the run starts from (lmht MODE -c PRESET)")
    p.add_argument("--pythonpath", default="", help="prepended to PYTHONPATH (the repository root)")
    p.add_argument("--threads", type=int, default=0, help="OMP/MKL threads of the run (0 = unchanged)")
    p.add_argument("settings", nargs="*", help="key=value settings passed to the CLI")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.pythonpath:  # the conda deployment runs the working tree's code (envs/lmht.yaml)
        sys.path.insert(0, args.pythonpath)
    from lmht.experiment.cell import Cell
    from lmht.experiment.record import METRICS_FILE, FailureRecord, read_record, write_record

    out: Path = args.out
    cell = Cell.from_path(out)
    out.mkdir(parents=True, exist_ok=True)
    preset = ["--config", args.preset] if args.preset else []
    command = [
        *shlex.split(args.launcher),
        cell.mode,
        *preset,
        "--out",
        str(out),
        *args.settings,
        "resume=true",
    ]
    try:
        lock_fd = acquire_cell_lock(out, shlex.join(command))  # held until this process and the CLI end
    except CellLocked as exc:
        print(f"run_cell: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    args.log.parent.mkdir(parents=True, exist_ok=True)
    orphans = remove_orphan_tmp_files(out)
    if orphans:
        with args.log.open("a") as log:
            log.write(f"run_cell: removed temporary files of an interrupted run: {', '.join(orphans)}\n")
    metrics, status_file = out / METRICS_FILE, out / "status.json"
    requeued = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0
    for stale in [metrics, status_file, *([] if requeued else out.glob("checkpoint*.pt"))]:
        stale.unlink(missing_ok=True)

    record = FailureRecord(
        mode=cell.mode,
        error="",
        status="ok",
        command=shlex.join(command),
        returncode=0,
        requeued=requeued,
        log=str(args.log),
    )
    start = time.time()
    parent = cell.parent()
    # the parent cell has the same dataset, arch and seed: a sibling folder of this cell's
    parent_metrics = out.parents[1] / parent.name / out.name / METRICS_FILE if parent else None
    upstream = read_record(parent_metrics) if parent_metrics else ("ok", "", None)
    if upstream[0] != "ok":
        record.status, record.returncode = "failed", None
        record.error = f"upstream cell failed: {parent_metrics}: {upstream[1]}"
        with args.log.open("a") as log:
            log.write(record.error + "\n")
    else:
        env = dict(os.environ)
        if args.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (args.pythonpath, env.get("PYTHONPATH")) if p)
        if args.threads > 0:
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[var] = str(args.threads)
        with args.log.open("a") as log:
            log.write(f"$ {record.command}\n")
            log.flush()
            # the CLI inherits the lock: it stays held while training runs, even if this script dies
            rc = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=(lock_fd,))
        record.returncode = rc
        if rc != 0:
            record.status, record.error = "failed", tail(args.log) or f"exit code {rc}"
        elif not metrics.is_file():
            record.status, record.error = "failed", f"the CLI exited 0 but wrote no {metrics}"
        else:
            status, reason, _ = read_record(metrics)
            if status != "ok":
                record.status, record.error = "failed", reason

    record.wall_time_s = round(time.time() - start, 3)
    record.config = dict(s.split("=", 1) for s in args.settings if "=" in s)
    write_record(status_file, record)
    if record.status == "ok":
        return 0
    if args.on_failure == "fail":
        metrics.unlink(missing_ok=True)
        print(f"run_cell: {cell.mode} cell {out} failed (see {args.log}):\n{record.error}", file=sys.stderr)
        return record.returncode or 1
    write_record(metrics, record)
    print(
        f"run_cell: {cell.mode} cell {out} FAILED, recorded in {metrics} (on_failure=record)", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
