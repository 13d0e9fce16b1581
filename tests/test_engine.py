"""Engine: determinism, non-finite loss, checkpoint integrity, schedules, optimizers."""

from __future__ import annotations

import json
import os

import pytest
import torch
import yaml

from lmht import checkpoint as C
from lmht import cli
from lmht.config import resolve_config
from lmht.engine import trainer as engine_trainer

SYNTHETIC = {
    "dataset": "synthetic",
    "dataset_options": {"in_chans": 1, "image_size": 28, "length": 128, "noise": 6.0},
    "arch": "fmnist_cnn",
    "model_options": {"widths": [4, 8], "hidden": 16},
    "batch_size": 32,
    "epochs": 2,
}


@pytest.fixture
def cfg_file(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(SYNTHETIC))
    return str(path)


def run_cli(*args) -> int:
    return cli.main([str(a) for a in args])


def metrics(out) -> dict:
    return json.loads((out / "metrics.json").read_text())


def weights(out) -> dict:
    return torch.load(out / "checkpoint.pt", weights_only=True)["model"]


def test_same_seed_same_result_other_seed_differs(cfg_file, tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert run_cli("direct", "-c", cfg_file, "-o", tmp_path / name, f"seed={seed}", "augment=true") == 0
    a, b = (metrics(tmp_path / n) for n in "ab")
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]
    assert a["top1_per_step"] == b["top1_per_step"] and a["firing_rate"] == b["firing_rate"]
    wa, wb, wc = (weights(tmp_path / n) for n in "abc")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(cfg_file, tmp_path, monkeypatch, capsys):
    forward = engine_trainer.forward
    calls = {"train": 0}

    def poisoned(model, x, snn):
        out = forward(model, x, snn)
        if model.training:
            calls["train"] += 1
            if calls["train"] > 4:  # epoch 1 has 4 steps: poison epoch 2
                return out * float("nan")
        return out

    monkeypatch.setattr(engine_trainer, "forward", poisoned)
    out = tmp_path / "nan"
    assert run_cli("direct", "-c", cfg_file, "-o", out) == 3
    err = capsys.readouterr().err
    assert "non-finite training loss (nan) at epoch 2" in err and "last good checkpoint" in err
    assert not (out / "metrics.json").exists()
    state = C.load_checkpoint(out / "checkpoint.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_huge_lr_is_reported_as_non_finite(cfg_file, tmp_path, capsys):
    assert run_cli("ann", "-c", cfg_file, "-o", tmp_path / "o", "lr=1e6") == 3
    assert "non-finite training loss" in capsys.readouterr().err


@pytest.fixture
def finished(cfg_file, tmp_path):
    out = tmp_path / "run"
    assert run_cli("direct", "-c", cfg_file, "-o", out, "epochs=1") == 0
    (out / "metrics.json").unlink()  # pretend the run was killed after its last checkpoint
    return out


def test_truncated_checkpoint_is_detected(cfg_file, finished, capsys):
    path = finished / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert run_cli("direct", "-c", cfg_file, "-o", finished, "epochs=1") == 2
    err = capsys.readouterr().err
    assert str(path) in err and "corrupt or truncated" in err and "--restart" in err
    # without the digest sidecar, torch.load fails and is reported the same way
    (finished / "checkpoint.pt.sha256").unlink()
    assert run_cli("direct", "-c", cfg_file, "-o", finished, "epochs=1") == 2
    err = capsys.readouterr().err
    assert str(path) in err and "cannot be read" in err
    assert run_cli("direct", "-c", cfg_file, "-o", finished, "epochs=1", "--restart") == 0
    assert (finished / "metrics.json").exists()


def test_flipped_byte_is_detected_and_resume_false_ignores_it(cfg_file, finished, capsys):
    path = finished / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert run_cli("direct", "-c", cfg_file, "-o", finished, "epochs=1") == 2
    assert "corrupt" in capsys.readouterr().err
    assert run_cli("direct", "-c", cfg_file, "-o", finished, "epochs=1", "resume=false") == 0
    C.load_checkpoint(path)  # rewritten and valid


def test_corrupt_ann_checkpoint_for_hybrid_is_reported(cfg_file, tmp_path, capsys):
    bad = tmp_path / "ann.pt"
    bad.write_bytes(b"not a checkpoint")
    assert run_cli("hybrid", "-c", cfg_file, "-o", tmp_path / "h", f"ann_checkpoint={bad}") == 2
    assert str(bad) in capsys.readouterr().err


def test_snn_checkpoint_is_not_an_ann(cfg_file, tmp_path, capsys):
    assert run_cli("direct", "-c", cfg_file, "-o", tmp_path / "d", "epochs=1") == 0
    assert (
        run_cli("convert", "-c", cfg_file, "-o", tmp_path / "c", f"ann_checkpoint={tmp_path}/d/checkpoint.pt")
        == 2
    )
    assert "checkpoint" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ checkpoint io
def _state(epoch):
    return {
        "format": C.CHECKPOINT_FORMAT,
        "mode": "direct",
        "config": {},
        "model": {"w": torch.ones(2) * epoch},
        "epoch": epoch,
    }


def test_checkpoint_roundtrip_and_every_kill_point_verifies(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    C.save_checkpoint(path, _state(1))
    assert C.load_checkpoint(path)["epoch"] == 1
    # simulate a kill after the first sidecar write of the next save: old file + sidecar [new, old]
    real = C.atomic_write_bytes
    monkeypatch.setattr(C, "atomic_write_bytes", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        C.save_checkpoint(path, _state(2))
    assert C.load_checkpoint(path)["epoch"] == 1
    # kill after the checkpoint replace, before the final sidecar: new file + sidecar [new, old]
    calls = {"n": 0}

    def json_then_die(p, obj):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt()
        C.atomic_write_text(p, json.dumps(obj))

    monkeypatch.setattr(C, "atomic_write_bytes", real)
    monkeypatch.setattr(C, "atomic_write_json", json_then_die)
    with pytest.raises(KeyboardInterrupt):
        C.save_checkpoint(path, _state(2))
    assert C.load_checkpoint(path)["epoch"] == 2
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_checkpoint_structure_and_mode_checks(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"just": "weights"}, path)
    with pytest.raises(C.CheckpointError, match="not an lmht run checkpoint"):
        C.load_checkpoint(path)
    C.save_checkpoint(path, _state(1))
    with pytest.raises(C.CheckpointError, match="'direct' run"):
        C.load_checkpoint(path, modes=("ann",))
    with pytest.raises(C.CheckpointError, match="not found"):
        C.load_checkpoint(tmp_path / "missing.pt")


def test_atomic_json_writes_nulls_for_non_finite(tmp_path):
    C.atomic_write_json(tmp_path / "m.json", {"a": float("nan"), "b": [1.0, float("inf")]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": None, "b": [1.0, None]}


# ------------------------------------------------------------------------------------------ optimization
def _lrs(overrides, steps_per_epoch=4):
    cfg = resolve_config("direct", overrides=["dataset=synthetic", *overrides])
    model = torch.nn.Linear(2, 2)
    opt = engine_trainer.build_optimizer(cfg, model)
    sched = engine_trainer.build_scheduler(cfg, opt, steps_per_epoch)
    return cfg, opt, sched


def test_cosine_per_epoch_matches_the_closed_form():
    _, opt, sched = _lrs(["epochs=4", "lr=0.1"])
    seen = []
    for epoch in range(4):
        sched.step(epoch)
        seen.append(opt.param_groups[0]["lr"])
    import math

    assert seen == pytest.approx([0.05 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9


def test_per_step_schedule_with_warmup_and_adamw():
    _, opt, sched = _lrs(
        [
            "epochs=3",
            "lr=0.02",
            "optimizer=adamw",
            "weight_decay=0.01",
            "sched_on=step",
            "warmup_epochs=1",
            "warmup_lr=0.0",
        ]
    )
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["weight_decay"] == 0.01
    lrs = []
    for step in range(12):
        sched.step_update(step)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.0) and lrs[1] > lrs[0]  # linear warm-up over the first epoch
    assert lrs[4] == pytest.approx(0.02, rel=0.05) and lrs[11] < lrs[5]  # then cosine decay


def test_scheduler_none():
    _, opt, sched = _lrs(["scheduler=none"])
    assert sched is None and opt.param_groups[0]["lr"] == 0.025


def test_grad_clip_label_smoothing_and_freeze_bn_run(cfg_file, tmp_path):
    out = tmp_path / "o"
    assert (
        run_cli(
            "direct",
            "-c",
            cfg_file,
            "-o",
            out,
            "epochs=1",
            "grad_clip=0.5",
            "label_smoothing=0.1",
            "freeze_bn=true",
            "optimizer=adamw",
            "lr=1e-3",
        )
        == 0
    )
    assert metrics(out)["config"]["grad_clip"] == 0.5


def test_reparam_of_an_if_network_is_a_clear_error(cfg_file, tmp_path, capsys):
    assert run_cli("direct", "-c", cfg_file, "-o", tmp_path / "if", "epochs=1", "neuron=if", "L=1") == 0
    assert (
        run_cli(
            "reparam", "-c", cfg_file, "-o", tmp_path / "r", f"snn_checkpoint={tmp_path}/if/checkpoint.pt"
        )
        == 2
    )
    assert "cannot reparameterize" in capsys.readouterr().err
