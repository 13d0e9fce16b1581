"""Workflow robustness: one run per cell folder (lock), cleanup after a kill, one-line errors of the
dataset check and of the config schema."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from workflow_utils import REPO, SCRIPTS, snakemake

RUN_CELL = SCRIPTS / "run_cell.py"
#: a cell folder as the workflow lays it out (run_cell reads the mode from the cell name)
CELL = Path("results", "runs", "synthetic", "lmht_fmnist_cnn", "direct-lmht_L2_T2_uniform", "seed0")
GRID = {"name": "g", "datasets": ["synthetic"], "archs": ["lmht_fmnist_cnn"], "methods": ["direct-lmht"]}


def run_cell_command(cell: Path, launcher: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(RUN_CELL),
        "--out",
        str(cell),
        "--log",
        str(cell / "run.log"),
        "--launcher",
        launcher,
        *extra,
        "--",
        "epochs=1",
    ]


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _lock_holder(cell: Path) -> dict:
    try:
        return json.loads((cell / ".cell.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


@pytest.fixture
def busy_cell(tmp_path):
    """A cell whose run is in progress: run_cell with a launcher that sleeps (writes its pid first)."""
    cell = tmp_path / CELL
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "sleeper.py"
    script.write_text(
        f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )
    sleeper = f"{sys.executable} {script}"
    proc = subprocess.Popen(run_cell_command(cell, sleeper), stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: _lock_holder(cell).get("pid") == proc.pid and pidfile.exists() and pidfile.read_text())
    child = int(pidfile.read_text())
    yield cell, proc, child
    for pid in (proc.pid, child):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    proc.stderr.close()


def test_second_run_on_the_same_cell_fails_fast_naming_the_first(busy_cell, tmp_path):
    cell, first, _ = busy_cell
    log_before = (cell / "run.log").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok = f"{sys.executable} -c 'raise SystemExit(\"must not run\")'"
    second = subprocess.run(
        run_cell_command(Path("..") / CELL, ok),  # relative path, other working directory
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 75
    holder = _lock_holder(cell)
    message = second.stderr.strip()
    assert len(message.splitlines()) == 1 and "in use by another run" in message
    for value in (holder["host"], str(first.pid), holder["started"], holder["cwd"]):
        assert value in message
    assert (cell / "run.log").read_text() == log_before  # the first run's files are untouched
    assert not (cell / "status.json").exists() and not (cell / "metrics.json").exists()
    assert first.poll() is None


def test_the_training_process_keeps_the_lock_after_the_wrapper_is_killed(busy_cell):
    """SIGKILL the wrapper: its CLI child still trains and still holds the cell; once that ends the
    kernel releases the lock and the next run proceeds without any cleanup."""
    cell, first, child = busy_cell
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    quick = f"{sys.executable} -c 'pass'"
    assert subprocess.run(run_cell_command(cell, quick), capture_output=True, timeout=60).returncode == 75
    os.kill(child, signal.SIGKILL)
    _wait_for(lambda: not Path(f"/proc/{child}").exists() or "Z" in _proc_state(child))
    res = subprocess.run(run_cell_command(cell, quick), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr  # recorded as failed (no metrics), but it ran
    assert json.loads((cell / "status.json").read_text())["error"].endswith(
        "wrote no " + str(cell / "metrics.json")
    )


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "Z"


def test_orphan_tmp_files_of_a_killed_run_are_removed(tmp_path):
    cell = tmp_path / CELL
    cell.mkdir(parents=True)
    orphans = [".checkpoint.pt.x1y2.tmp", "status.json.tmp", ".metrics.json.abc.tmp"]
    for name in orphans:
        (cell / name).write_text("half")
    (cell / "keep.txt").write_text("not a temp file")
    res = subprocess.run(
        run_cell_command(cell, f"{sys.executable} -c 'pass'"), capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert not [p for p in cell.iterdir() if p.name.endswith(".tmp")]
    assert (cell / "keep.txt").exists()
    log = (cell / "run.log").read_text()
    assert "removed temporary files of an interrupted run" in log and all(n in log for n in orphans)


# ------------------------------------------------------------------------------------ dataset check
def _dataset_info(tmp_path: Path, dataset: str, root: str, settings: dict) -> tuple[int, str, str]:
    """Run workflow/scripts/dataset_info.py as the Snakemake rule does (script: directive)."""
    log = tmp_path / "logs" / f"{dataset}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    fake = SimpleNamespace(
        scriptdir=str(SCRIPTS),
        log=[str(log)],
        wildcards=SimpleNamespace(dataset=dataset),
        params=SimpleNamespace(data_root=root, settings=settings, preset=""),
        output=SimpleNamespace(info=str(tmp_path / "data" / f"{dataset}.json")),
    )
    code = (
        "import runpy, sys, pickle; fake = pickle.loads(sys.stdin.buffer.read()); "
        f"runpy.run_path({str(SCRIPTS / 'dataset_info.py')!r}, init_globals={{'snakemake': fake}})"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(fake),
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return res.returncode, log.read_text(), res.stderr.decode()


@pytest.mark.parametrize(
    ("dataset", "root", "settings", "expected"),
    [
        ("synthetic", "", {"lr": -1}, "'lr' must be >= 0"),
        ("synthetic", "", {"dataset_options": {"bogus": 1}}, "bogus"),
        ("fashion_mnist", "/nonexistent/fmnist", {}, "/nonexistent/fmnist"),
        ("cifar10", "/nonexistent/cifar", {}, "cifar-10-batches-py"),
    ],
)
def test_dataset_check_error_is_one_line_in_its_log(tmp_path, dataset, root, settings, expected):
    code, log, stderr = _dataset_info(tmp_path, dataset, root, settings)
    lines = [ln for ln in log.splitlines() if ln.strip()]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"dataset_info: {dataset}: ") and expected in lines[0], log
    assert "Traceback" not in log and lines[0] in stderr


def test_dataset_check_records_the_data(tmp_path):
    code, log, _ = _dataset_info(tmp_path, "synthetic", "", {"dataset_options": {"length": 40}})
    assert code == 0, log
    record = json.loads((tmp_path / "data" / "synthetic.json").read_text())
    assert record["train_size"] == 40 and record["source"] is None


# ------------------------------------------------------------------------------------ config schema
@pytest.mark.parametrize(
    ("override", "first_line"),
    [
        ({"on_failure": "ignore"}, "Invalid config: key 'on_failure': 'ignore' is not one of"),
        (
            {"suites": {"smoke": {"grids": [dict(GRID, L=[0])]}}},
            "Invalid config: key 'suites.smoke.grids[0].L[0]': 0 is less than the minimum of 1",
        ),
        ({"tolerance": -1}, "Invalid config: key 'tolerance': -1 is less than the minimum of 0"),
    ],
)
def test_schema_error_names_the_key_in_its_first_line(tmp_path, override, first_line):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"suite": "smoke", **override}))
    res = snakemake("--cores", "1", "--configfile", "bad.yaml", cwd=tmp_path, timeout=300)
    assert res.returncode != 0
    lines = (res.stdout + res.stderr).splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("WorkflowError"))
    assert lines[header + 1].startswith(first_line), "\n".join(lines)
