"""Checkpoints: weights-only loading (a crafted pickle never runs), integrity inside the file, and no
checkpoint with non-finite values (a diverged run keeps its last finite, resumable checkpoint)."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lmht import checkpoint as C
from lmht import cli

SYNTHETIC = {
    "dataset": "synthetic",
    "dataset_options": {"in_chans": 1, "image_size": 28, "length": 128, "noise": 6.0},
    "arch": "fmnist_cnn",
    "model_options": {"widths": [4, 8], "hidden": 16},
    "batch_size": 32,
    "epochs": 1,
    "T": 2,
    "L": 2,
    "progress": False,
}


class Payload:
    """Unpickling this runs ``touch <marker>`` (what a crafted checkpoint from a stranger could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A QCFS ANN run and a direct LM-HT run (their checkpoints are the genuine articles)."""
    d = tmp_path_factory.mktemp("ckpt")
    cfg = d / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(SYNTHETIC))
    assert cli.main(["ann", "-c", str(cfg), "-o", str(d / "ann"), "levels=4"]) == 0
    assert cli.main(["direct", "-c", str(cfg), "-o", str(d / "direct")]) == 0
    return cfg, d / "ann", d / "direct"


def stderr_lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


# ------------------------------------------------------------------------------------------ weights-only
def crafted_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """Two crafted checkpoints: torch.save's zip format with a payload among real-looking keys, and a
    raw pickle (torch.load's legacy format)."""
    zipped, raw = tmp_path / "zipped.pt", tmp_path / "raw.pt"
    torch.save({"format": C.CHECKPOINT_FORMAT, "mode": "ann", "model": {}, "x": Payload(marker)}, zipped)
    raw.write_bytes(pickle.dumps({"format": C.CHECKPOINT_FORMAT, "x": Payload(marker)}))
    return {"zip": zipped, "raw": raw}


@pytest.mark.parametrize("form", ["zip", "raw"])
@pytest.mark.parametrize(
    ("mode", "how"),
    [
        ("hybrid", "ann_checkpoint"),
        ("convert", "ann_checkpoint"),
        ("reparam", "snn_checkpoint"),
        ("direct", "resume"),
        ("direct", "resume with a matching sidecar"),
    ],
)
def test_crafted_pickle_is_refused_without_running(form, mode, how, runs, tmp_path, capsys):
    cfg, _, _ = runs
    marker = tmp_path / "payload-ran"
    evil = crafted_files(tmp_path, marker)[form]
    out = tmp_path / "out"
    args = [mode, "-c", str(cfg), "-o", str(out)]
    if how.startswith("resume"):
        out.mkdir()
        shutil.copy(evil, out / "checkpoint.pt")
        if "sidecar" in how:  # an attacker can write the sidecar too
            digest = C.sha256_file(out / "checkpoint.pt")
            (out / "checkpoint.pt.sha256").write_text(f'{{"sha256": ["{digest}"]}}')
        evil = out / "checkpoint.pt"
    else:
        args.append(f"{how}={evil}")
    assert cli.main(args) == 2
    lines = stderr_lines(capsys)
    assert len(lines) == 1 and str(evil) in lines[0], lines
    expected = "not a weights-only checkpoint" if form == "zip" else "not a torch.save zip archive"
    assert expected in lines[0]
    assert not marker.exists()
    assert not (out / "metrics.json").exists()
    # the payload is live: the loading lmht used before (weights_only=False) runs it
    if form == "zip":
        torch.load(evil, weights_only=False)
    else:
        pickle.loads(evil.read_bytes())
    assert marker.exists()


def test_run_checkpoints_load_weights_only_and_restore_every_rng(runs):
    _, ann, direct = runs
    for out in (ann, direct):
        state = torch.load(out / "checkpoint.pt", weights_only=True)
        assert state["format"] == C.CHECKPOINT_FORMAT
        assert state["integrity"]["sha256"] == C.payload_digest(state)
    rng = state["rng"]
    name, key, *_ = rng["numpy"]
    assert name == "MT19937" and len(key) == 624 and isinstance(key, list)
    np.random.set_state(rng["numpy"])  # noqa: NPY002
    a = np.random.rand(3)  # noqa: NPY002
    np.random.set_state(rng["numpy"])  # noqa: NPY002
    assert np.array_equal(a, np.random.rand(3))  # noqa: NPY002
    assert isinstance(rng["python"], tuple) and rng["torch"].dtype == torch.uint8


def test_fields_a_weights_only_file_cannot_hold_are_named(tmp_path):
    state = {"format": C.CHECKPOINT_FORMAT, "mode": "direct", "config": {}, "model": {}, "epoch": 0}
    with pytest.raises(TypeError, match=r"rng\.numpy\[1\]: numpy\.ndarray"):
        C.save_checkpoint(tmp_path / "c.pt", {**state, "rng": {"numpy": ("MT19937", np.zeros(3))}})
    with pytest.raises(TypeError, match=r"history: builtins\.set"):
        C.save_checkpoint(tmp_path / "c.pt", {**state, "history": {1, 2}})
    assert not (tmp_path / "c.pt").exists()
    # NumPy scalars and str subclasses are stored as plain values
    C.save_checkpoint(tmp_path / "c.pt", {**state, "best_top1": np.float64(1.5), "n": np.int64(3)})
    loaded = C.load_checkpoint(tmp_path / "c.pt")
    assert type(loaded["best_top1"]) is float and type(loaded["n"]) is int


def test_older_format_is_refused_with_its_name(tmp_path):
    path = tmp_path / "v1.pt"
    torch.save({"format": "lmht-checkpoint-v1", "mode": "ann", "config": {}, "model": {}, "epoch": 1}, path)
    with pytest.raises(C.CheckpointError, match=r"format lmht-checkpoint-v2 expected.*lmht-checkpoint-v1"):
        C.load_checkpoint(path)


# ------------------------------------------------------------------------------------------ integrity
def _data_offset(path: Path, member: zipfile.ZipInfo) -> int:
    with open(path, "rb") as fh:
        fh.seek(member.header_offset)
        header = fh.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return member.header_offset + 30 + name_len + extra_len


def _flip(path: Path, *offsets: int) -> None:
    data = bytearray(path.read_bytes())
    for o in offsets:
        data[o] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["tensor data", "pickle"])
def test_two_flipped_bytes_without_sidecar_are_refused(where, runs, tmp_path, capsys):
    cfg, _, direct = runs
    out = tmp_path / "run"
    shutil.copytree(direct, out)
    (out / "metrics.json").unlink()  # as if killed after its last checkpoint
    (out / "checkpoint.pt.sha256").unlink()
    path = out / "checkpoint.pt"
    with zipfile.ZipFile(path) as zf:
        members = zf.infolist()
    if where == "tensor data":  # the largest tensor: a weight matrix
        member = max((m for m in members if "/data/" in m.filename), key=lambda m: m.file_size)
    else:
        member = next(m for m in members if m.filename.endswith("data.pkl"))
    start = _data_offset(path, member)
    _flip(path, start + member.file_size // 2, start + member.file_size // 2 + 3)
    assert cli.main(["direct", "-c", str(cfg), "-o", str(out)]) == 2
    lines = stderr_lines(capsys)
    assert len(lines) == 1 and str(path) in lines[0], lines
    if where == "tensor data":
        assert "do not match the digest stored inside it" in lines[0]
    assert not (out / "metrics.json").exists()
    assert cli.main(["direct", "-c", str(cfg), "-o", str(out), "--restart"]) == 0


def test_any_two_byte_flip_is_refused_or_changes_nothing(tmp_path):
    """Flip two adjacent bytes at 96 places across a checkpoint (no sidecar): every load either
    refuses the file or returns exactly the saved fields (flips in zip padding change nothing)."""
    path = tmp_path / "c.pt"
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.BatchNorm1d(8))
    C.save_checkpoint(
        path,
        {
            "format": C.CHECKPOINT_FORMAT,
            "mode": "direct",
            "config": {"lr": 0.1, "arch": "x"},
            "model": model.state_dict(),
            "epoch": 3,
            "history": [{"epoch": 1, "test_acc": 70.0}],
        },
    )
    os.remove(f"{path}.sha256")
    original = path.read_bytes()
    digest = C.load_checkpoint(path)["integrity"]["sha256"]
    refused = 0
    for offset in np.linspace(0, len(original) - 2, 96).astype(int):
        path.write_bytes(original)
        _flip(path, int(offset), int(offset) + 1)
        try:
            state = C.load_checkpoint(path)
        except C.CheckpointError as exc:
            assert str(path) in str(exc)
            refused += 1
            continue
        assert C.payload_digest(state) == digest == state["integrity"]["sha256"]
    assert refused >= 48


def test_payload_digest_covers_names_values_and_tensor_bytes():
    base = {"a": torch.arange(4.0), "b": [1, 2.5, "x", None, True], "c": {"d": (1, 2)}}
    d0 = C.payload_digest(base)
    variants = [
        {**base, "a": torch.tensor([0.0, 1.0, 2.0, 3.5])},
        {**base, "a": torch.arange(4.0).double()},
        {**base, "a": torch.arange(4.0).reshape(2, 2)},
        {**base, "b": [1, 2.5, "y", None, True]},
        {**base, "b": [1, 2.5000000001, "x", None, True]},
        {**base, "b": [1, 2.5, "x", None, 1]},
        {**base, "c": {"d": [1, 2]}},
        {"a": base["a"], "B": base["b"], "c": base["c"]},
    ]
    assert len({d0, *(C.payload_digest(v) for v in variants)}) == len(variants) + 1
    assert C.payload_digest({**base, "integrity": {"sha256": "ignored"}}) == d0


# ------------------------------------------------------------------------------------------ non-finite
def test_nonfinite_state_is_never_written(tmp_path):
    path = tmp_path / "c.pt"
    good = {
        "format": C.CHECKPOINT_FORMAT,
        "mode": "direct",
        "config": {},
        "model": {"w": torch.ones(3), "bn.running_var": torch.ones(2)},
        "epoch": 1,
        "step": 2,
    }
    C.save_checkpoint(path, good)
    before = path.read_bytes()
    bad = {**good, "model": {"w": torch.ones(3), "bn.running_var": torch.tensor([1.0, float("inf")])}}
    bad["optimizer"] = {"state": {0: {"momentum_buffer": torch.tensor([float("nan")])}}}
    with pytest.raises(C.NonFiniteCheckpointError) as err:
        C.save_checkpoint(path, {**bad, "step": 3})
    message = str(err.value)
    assert "model.bn.running_var (inf)" in message and "optimizer.state.0.momentum_buffer (nan)" in message
    assert "after 1 epoch(s) + 3 step(s)" in message and "last finite checkpoint" in message
    assert err.value.tensors == [
        ("model.bn.running_var", "inf"),
        ("optimizer.state.0.momentum_buffer", "nan"),
    ]
    assert path.read_bytes() == before
    assert C.nonfinite_tensors(C.load_checkpoint(path)) == []
    assert C.nonfinite_tensors({"x": torch.tensor([1, 2]), "y": torch.zeros(0)}) == []


def test_diverged_run_keeps_a_finite_resumable_checkpoint(runs, tmp_path, capsys):
    """lr = 1e20 with a checkpoint after every step: after the first update BatchNorm's running_var
    overflows to inf while the loss stays finite. The run stops (exit 3) naming the tensors; the kept
    checkpoint is the finite one of step 1, and resuming from it replays the same divergence."""
    cfg, _, _ = runs
    out = tmp_path / "diverged"
    args = ["direct", "-c", str(cfg), "-o", str(out), "lr=1e20", "checkpoint_every=1", "epochs=2"]
    assert cli.main(args) == 3
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "training diverged" in lines[0] and "running_var (inf)" in lines[0], lines
    assert "last finite checkpoint" in lines[0] and "Lower lr" in lines[0]
    path = out / "checkpoint.pt"
    state = C.load_checkpoint(path)
    assert C.nonfinite_tensors(state) == [] and (state["epoch"], state["step"]) == (0, 1)
    kept = hashlib.sha256(path.read_bytes()).hexdigest()
    assert cli.main(args) == 3
    captured2 = capsys.readouterr()
    assert "resumed from" in captured2.out and "after 0 epoch(s) + 1 step(s)" in captured2.out
    assert [ln for ln in captured2.err.splitlines() if ln.strip()] == lines  # the same divergence again
    assert hashlib.sha256(path.read_bytes()).hexdigest() == kept
    assert not (out / "metrics.json").exists()


def test_checkpoint_bytes_are_plain_torch_save(runs):
    """The file stays a plain torch.save dict (readable without lmht), now with an inner digest."""
    _, ann, _ = runs
    with zipfile.ZipFile(ann / "checkpoint.pt") as zf:
        assert any(n.endswith("data.pkl") for n in zf.namelist())
    state = torch.load(io.BytesIO((ann / "checkpoint.pt").read_bytes()), weights_only=True)
    assert set(state) >= {"model", "optimizer", "rng", "config", "integrity"}
