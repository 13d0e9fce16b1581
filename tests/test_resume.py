"""Kill-and-resume: a run killed with SIGKILL and restarted ends exactly like an uninterrupted run (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = {
    "dataset": "synthetic",
    "dataset_options": {"in_chans": 1, "image_size": 28, "length": 512, "noise": 6.0},
    "arch": "fmnist_cnn",
    "model_options": {"widths": [4, 8], "hidden": 16},
    "batch_size": 32,
    "epochs": 3,
    "T": 2,
    "L": 2,
    "lr": 0.05,
    "augment": True,  # random crop + flip: augmentation RNG must resume too
    "mixup": 0.4,  # Mixup draws from NumPy's global RNG, which the checkpoint restores
    "label_smoothing": 0.1,
    "progress": False,
}


def _command(cfg_path, out, *extra):
    return [sys.executable, "-m", "lmht", "direct", "--config", str(cfg_path), "--out", str(out), *extra]


def _env():
    return {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}


def _run(cfg_path, out, *extra):
    res = subprocess.run(
        _command(cfg_path, out, *extra), capture_output=True, text=True, env=_env(), timeout=300
    )
    assert res.returncode == 0, res.stderr
    return res


def _kill_after_checkpoint(cfg_path, out, *extra, want=lambda state: True):
    """Start the run, SIGKILL it once a checkpoint satisfying ``want`` exists; return that checkpoint."""
    proc = subprocess.Popen(
        _command(cfg_path, out, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env()
    )
    path = os.path.join(out, "checkpoint.pt")
    deadline = time.monotonic() + 240
    state = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(path):
                try:
                    state = torch.load(path, weights_only=True)
                except Exception:  # being replaced right now
                    state = None
                if state is not None and want(state):
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed: make it longer"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not os.path.exists(os.path.join(out, "metrics.json"))
    return state


def _final(out):
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as fh:
        metrics = json.load(fh)
    weights = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)["model"]
    return metrics, weights


def _assert_same_run(a, b):
    (ma, wa), (mb, wb) = a, b
    assert ma["top1"] == mb["top1"]
    assert ma["top1_per_step"] == mb["top1_per_step"]
    assert [r["test_acc"] for r in ma["history"]] == [r["test_acc"] for r in mb["history"]]
    assert [r["train_loss"] for r in ma["history"]] == [r["train_loss"] for r in mb["history"]]
    assert [r["lr"] for r in ma["history"]] == [r["lr"] for r in mb["history"]]
    assert ma["sops"] == mb["sops"]
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    cfg = d / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    _run(cfg, d / "full")
    return cfg, _final(d / "full")


@pytest.mark.slow
def test_sigkill_after_first_epoch_then_resume_matches(reference, tmp_path):
    cfg, full = reference
    out = tmp_path / "killed"
    state = _kill_after_checkpoint(cfg, out, want=lambda s: s["epoch"] >= 1)
    assert state["epoch"] < CONFIG["epochs"]
    res = _run(cfg, out)
    assert "resumed from" in res.stdout
    _assert_same_run(_final(out), full)


@pytest.mark.slow
def test_sigkill_mid_epoch_with_step_checkpoints_then_resume_matches(reference, tmp_path):
    cfg, full = reference
    out = tmp_path / "killed_mid"
    state = _kill_after_checkpoint(cfg, out, "checkpoint_every=3", want=lambda s: s["step"] > 0)
    assert state["step"] > 0
    res = _run(cfg, out, "checkpoint_every=3")
    assert "step(s)" in res.stdout
    _assert_same_run(_final(out), full)


@pytest.mark.slow
def test_sigkill_at_arbitrary_moments_never_leaves_a_broken_run(reference, tmp_path):
    """Kill repeatedly shortly after a fresh checkpoint appeared (often inside the next write); every
    restart resumes and the final result is still identical."""
    cfg, full = reference
    out = tmp_path / "chaos"
    path = out / "checkpoint.pt"
    kills = 0
    for offset in (0.0, 0.03, 0.11, 0.2):
        started = time.time()
        proc = subprocess.Popen(
            _command(cfg, out, "checkpoint_every=2"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(),
        )
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            if path.exists() and path.stat().st_mtime > started:
                break
            time.sleep(0.01)
        time.sleep(offset)
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
    assert kills >= 2
    _run(cfg, out, "checkpoint_every=2")
    _assert_same_run(_final(out), full)
