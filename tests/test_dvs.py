"""CIFAR10-DVS as the authors read it (frames, resize, split, augmentation), its cache and its error
messages on small corrupted fixtures made here, and the network's frame input (mean of the frames by
default, per-step bins as a variant)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lmht.data as data
from lmht.convert import build_snn
from lmht.data import cifar10_dvs
from lmht.data.transforms import DVSAugment, frame_transform
from lmht.network import FRAME_INPUTS, SpikingNetwork


def write_aedat(path: Path, t, x, y, p, header: bytes = b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n"):
    """Encode events (x column, y row, p) the way CIFAR10-DVS stores them (inverse of read_aedat)."""
    x_raw, y_raw = 127 - np.asarray(y, dtype=np.int64), 127 - np.asarray(x, dtype=np.int64)
    p_raw = 1 - np.asarray(p, dtype=np.int64)
    addr = (y_raw << 8) | (x_raw << 1) | p_raw
    words = np.stack([addr, np.asarray(t, dtype=np.int64)], 1).astype(">u4")
    path.write_bytes(header + words.tobytes())


def make_fake_dvs(root: Path, per_class: int = 10, n_events: int = 50) -> None:
    rng = np.random.default_rng(0)
    for c in cifar10_dvs.CLASSES:
        (root / "events_np" / c).mkdir(parents=True)
        for i in range(per_class):
            np.savez(
                root / "events_np" / c / f"cifar10_{c}_{i}.npz",
                t=np.sort(rng.integers(0, 10**6, n_events)),
                x=rng.integers(0, 128, n_events),
                y=rng.integers(0, 128, n_events),
                p=rng.integers(0, 2, n_events),
            )


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    """A private ``$LMHT_CACHE_DIR`` so no test writes to the user's ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LMHT_CACHE_DIR", str(cache))
    return cache


# ---------------------------------------------------------------- events -> frames
def test_aedat_decoding_and_frame_integration_in_file_order(tmp_path):
    t = np.array([0, 100, 200, 300, 400, 50, 600, 700, 800, 900])  # one timestamp out of order
    x = np.array([0, 1, 2, 3, 4, 127, 127, 5, 5, 5])
    y = np.array([0, 0, 0, 0, 0, 127, 0, 9, 9, 9])
    p = np.array([0, 1, 0, 1, 0, 1, 1, 0, 0, 1])
    write_aedat(tmp_path / "ev.aedat", t, x, y, p)
    ev = cifar10_dvs.read_aedat(tmp_path / "ev.aedat")
    for key, ref in zip("txyp", (t, x, y, p), strict=True):
        assert ev[key].tolist() == ref.tolist(), key
    full = cifar10_dvs.events_to_frames(ev, frames=2)
    assert full.shape == (2, 2, 128, 128) and full.sum() == 10
    assert full[0].sum() == 5 and full[1].sum() == 5  # equal-count slices
    assert full[0, 1, 0, 1] == 1 and full[0, 0, 0, 0] == 1  # [frame, polarity, row y, column x]
    # the event at t = 50 is the 6th in the file: SpikingJelly slices in file order, not by time
    assert full[1, 1, 127, 127] == 1
    assert full[1, 0, 9, 5] == 2 and full[1, 1, 9, 5] == 1
    uneven = cifar10_dvs.events_to_frames(ev, frames=3)
    assert [int(f.sum()) for f in uneven] == [3, 3, 4]  # the last slice takes the remainder


def test_resize_is_torchvisions_bilinear_with_antialias_by_default():
    torch.manual_seed(0)
    frames = torch.randint(0, 4, (3, 2, 128, 128)).float()
    ours = cifar10_dvs.resize_frames(frames, 48)
    ref = F.interpolate(frames, size=(48, 48), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(ours, ref)
    old = cifar10_dvs.resize_frames(frames, 48, antialias=False)  # torchvision < 0.17's tensor default
    ref_old = F.interpolate(frames, size=(48, 48), mode="bilinear", align_corners=False, antialias=False)
    torch.testing.assert_close(old, ref_old)
    # the weight of each input pixel in the output (the numbers of the module docstring)
    eye = torch.eye(128 * 128).view(-1, 1, 128, 128)[:: 128 * 3 + 1]  # one lone event per image
    kept_aa = cifar10_dvs.resize_frames(eye, 48).sum((1, 2, 3))
    kept_pt = cifar10_dvs.resize_frames(eye, 48, antialias=False).sum((1, 2, 3))
    assert kept_aa.min() > 0.08 and kept_aa.max() < 0.18
    assert 0.3 < (kept_pt == 0).float().mean() < 0.6 and kept_pt.max() < 0.7


# ---------------------------------------------------------------- split, cache, constructor
def test_authors_split_sorted_file_order_no_split_file(tmp_path, cache_env):
    make_fake_dvs(tmp_path, per_class=20)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "cache" not in p.parts)
    train = data.create_dataset("cifar10_dvs", tmp_path, True, frames=5)
    test = data.create_dataset("cifar10_dvs", tmp_path, False, frames=5, seed=7)  # seed: no effect
    assert (len(train), len(test)) == (180, 20)
    assert np.bincount(test.targets).tolist() == [2] * 10
    # lexicographic order (torchvision's DatasetFolder): ..._0, _1, _10, ..., _19, _2, ..., _9
    assert [p.name for p in test.files[:2]] == ["cifar10_airplane_8.npz", "cifar10_airplane_9.npz"]
    assert "cifar10_airplane_19.npz" in {p.name for p in train.files}
    assert not {p.name for p in train.files} & {p.name for p in test.files}
    x, y = test[0]
    assert x.shape == (5, 2, 48, 48) and x.dtype == torch.float32 and y == 0
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "cache" not in p.parts)
    assert after == before, "nothing may be written into the data root"


def test_cache_location_content_and_rebuild(tmp_path, cache_env):
    root = tmp_path / "dvs"
    make_fake_dvs(root)
    ds = cifar10_dvs.CIFAR10DVS(root, False, 5, 48)  # the prepare step's call
    root_id = cifar10_dvs.default_cache_dir(root).name
    assert ds.cache_dir == cache_env / "cifar10_dvs" / root_id / "F5_S48_aa"
    x = ds.load_frames(0)
    cached = ds.cache_path(0)
    assert cached.is_file() and cached.parent.name == "airplane"
    events = cifar10_dvs.read_events(ds.files[0])
    fresh = cifar10_dvs.resize_frames(cifar10_dvs.events_to_frames(events, 5), 48)
    torch.testing.assert_close(x, fresh)
    assert torch.equal(ds.load_frames(0), x)
    cached.write_bytes(b"not a zip")  # a damaged cache file is rebuilt, with a warning
    with pytest.warns(UserWarning, match="rebuilding"):
        assert torch.equal(ds.load_frames(0), x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.load_frames(0)
    own = cifar10_dvs.CIFAR10DVS(root, True, 5, 48, cache_dir=tmp_path / "mine", antialias=False)
    assert own.cache_dir == tmp_path / "mine" / "F5_S48_noaa"
    own.load_frames(0)
    assert own.cache_path(0).is_file()


def test_read_only_data_root(tmp_path, cache_env):
    root = tmp_path / "ro"
    make_fake_dvs(root, per_class=10)
    for p in sorted(root.rglob("*"), reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)
    root.chmod(0o555)
    try:
        ds = data.create_dataset("cifar10_dvs", root, True, frames=2)
        assert ds[0][0].shape == (2, 2, 48, 48)
    finally:
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


# ---------------------------------------------------------------- corrupt files
def corrupt_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = dict(t=[1, 2, 3], x=[1, 2, 3], y=[4, 5, 6], p=[0, 1, 0])
    cases = {}
    d = tmp_path / "files"
    d.mkdir()
    write_aedat(d / "trunc.aedat", [1, 2], [3, 4], [5, 6], [0, 1])
    (d / "trunc.aedat").write_bytes((d / "trunc.aedat").read_bytes()[:-3])
    cases["truncated aedat"] = (d / "trunc.aedat", "truncated")
    (d / "garbage.aedat").write_bytes(bytes(range(256)) * 4)
    cases["garbage aedat"] = (d / "garbage.aedat", "not an AEDAT file")
    write_aedat(d / "empty_body.aedat", [], [], [], [])
    cases["no events"] = (d / "empty_body.aedat", "no events")
    np.savez(d / "nokeys.npz", t=good["t"], x=good["x"])
    cases["npz missing keys"] = (d / "nokeys.npz", "lacks key")
    (d / "garbage.npz").write_bytes(b"\x00garbage that is no zip archive" * 3)
    cases["garbage npz"] = (d / "garbage.npz", "not a readable .npz")
    np.savez(d / "range.npz", **{**good, "x": [1, 2, 300]})
    cases["coordinates"] = (d / "range.npz", "outside the 128×128 sensor")
    np.savez(d / "lengths.npz", **{**good, "p": [0, 1]})
    cases["lengths"] = (d / "lengths.npz", "different lengths")
    return cases


def test_corrupt_event_files_give_one_line_data_file_errors(tmp_path):
    for what, (path, problem) in corrupt_cases(tmp_path).items():
        with pytest.raises(data.DataFileError) as err:
            cifar10_dvs.read_events(path)
        message = str(err.value)
        assert message.startswith(str(path)) and problem in message, what
        assert "\n" not in message and err.value.path == path, what


def test_corrupt_file_in_a_dataset(tmp_path, cache_env):
    root = tmp_path / "dvs"
    make_fake_dvs(root)
    victim = root / "events_np" / "cat" / "cifar10_cat_9.npz"  # in the test split
    victim.write_bytes(victim.read_bytes()[:100])  # truncated zip
    ds = data.create_dataset("cifar10_dvs", root, False, frames=2)  # opening is cheap: not read yet
    index = [p.name for p in ds.files].index(victim.name)
    with pytest.raises(data.DataFileError, match=r"cifar10_cat_9\.npz: not a readable \.npz"):
        ds[index]
    victim.write_bytes(b"")
    with pytest.raises(data.DataFileError, match=r"cifar10_cat_9\.npz: empty file"):
        data.create_dataset("cifar10_dvs", root, False, frames=2)


# ---------------------------------------------------------------- augmentation
def test_dvs_augment_is_seeded_and_shared_by_all_frames():
    aug = DVSAugment()
    frame = torch.rand(1, 2, 48, 48)
    x = frame.repeat(10, 1, 1, 1)
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    assert torch.equal(aug(x), a)
    assert all(torch.equal(a[i], a[0]) for i in range(10)), "one draw for all frames"
    outs = []
    for seed in range(6):
        torch.manual_seed(seed)
        outs.append(aug(x))
    assert any(not torch.equal(o, outs[0]) for o in outs[1:])


def test_dvs_augment_draws_flip_half_the_time_and_ops_with_replacement():
    aug = DVSAugment()
    flips, pairs = 0, []
    for seed in range(400):
        torch.manual_seed(seed)
        flip, names = aug.draw()
        flips += flip
        pairs.append(tuple(names))
    assert 150 < flips < 250
    assert all(len(p) == 2 and set(p) <= set(DVSAugment.OPS) for p in pairs)
    assert sum(p[0] == p[1] for p in pairs) > 80, "two draws with replacement repeat an op ~1/3 of the time"
    assert {p[0] for p in pairs} == set(DVSAugment.OPS)


def test_dvs_augment_operations():
    x = torch.rand(3, 2, 48, 48) + 1  # no zeros
    roll = DVSAugment(ops=("roll",), n_ops=1)
    for seed in range(10):
        torch.manual_seed(seed)
        out = roll(x)
        candidates = [x, x.flip(-1)]
        shifts = [(a, b) for a in range(-7, 8) for b in range(-7, 8)]
        assert any(torch.equal(out, torch.roll(c, s, (-2, -1))) for c in candidates for s in shifts)
    cut = DVSAugment(ops=("cutout",), n_ops=1)
    for seed in range(10):
        torch.manual_seed(seed)
        out = cut(x)
        zero = (out == 0).all(0).all(0)  # [H, W] erased for every frame and channel alike
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert len(rows) <= 24 and len(cols) <= 24 and zero.sum() == len(rows) * len(cols) > 0
    rot = DVSAugment(ops=("rotate",), n_ops=1)
    assert rot.rotate.degrees == [-45.0, 45.0]


def test_frame_transform_policies():
    on = data.TransformConfig(augment=True)
    assert isinstance(frame_transform(on, True, size=48), DVSAugment)
    assert not isinstance(frame_transform(on, True, size=48, policy="crop_flip"), DVSAugment)
    assert frame_transform(on, False, size=48) is None
    with pytest.raises(ValueError, match="policy"):
        frame_transform(on, True, size=48, policy="bogus")
    with pytest.raises(ValueError, match="static images"):
        frame_transform(data.TransformConfig(augment=True, cutout=8), True, size=48)


def test_dataset_augmentation_switch(tmp_path, cache_env):
    make_fake_dvs(tmp_path)
    plain = data.create_dataset("cifar10_dvs", tmp_path, True, frames=2, augment=False)
    aug = data.create_dataset("cifar10_dvs", tmp_path, True, frames=2, augment=True)
    crop = data.create_dataset(
        "cifar10_dvs", tmp_path, True, frames=2, augment=True, augment_policy="crop_flip"
    )
    assert plain.transform is None and isinstance(aug.transform, DVSAugment)
    assert not isinstance(crop.transform, DVSAugment) and crop[0][0].shape == (2, 2, 48, 48)
    with pytest.raises(ValueError, match="augment_policy"):
        data.create_dataset("cifar10_dvs", tmp_path, True, augment_policy="bogus")


# ---------------------------------------------------------------- network frame input
class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x):
        return self.head(self.stem(x))


def test_frame_mean_is_direct_encoding_of_the_mean_frame():
    """F = 10 frames at T = 4 (not a multiple): the stem runs once on the mean frame and the result is
    the direct-encoded network's on x.mean(1)."""
    assert FRAME_INPUTS == ("mean", "bins")
    torch.manual_seed(0)
    ann = TinyNet().eval()
    frames = build_snn(ann, "lmht", L=2, T=4, input_shape=(10, 2, 8, 8), encoding="frames").eval()
    direct = build_snn(ann, "lmht", L=2, T=4, input_shape=(2, 8, 8)).eval()
    direct.load_state_dict(frames.state_dict())
    assert frames.frame_input == "mean"
    calls = []
    frames.model.stem[0].register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    x = torch.rand(3, 10, 2, 8, 8)
    with torch.no_grad():
        out = frames(x)
        ref = direct(x.mean(1))
    assert out.shape == (4, 3, 3) and calls == [3]
    torch.testing.assert_close(out, ref)


def test_frame_bins_variant():
    torch.manual_seed(0)
    ann = TinyNet().eval()
    net = SpikingNetwork(
        build_snn(ann, "lmht", L=2, T=5).model, 5, "frames", (10, 2, 8, 8), frame_input="bins"
    ).eval()
    calls = []
    net.model.stem[0].register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    x = torch.rand(2, 10, 2, 8, 8)
    with torch.no_grad():
        assert net(x).shape == (5, 2, 3)
    assert calls == [5 * 2]  # the stem runs on every step's bin
    bins = net.encode(x).unflatten(0, (5, 2))
    torch.testing.assert_close(bins[1], x[:, 2:4].mean(1))
    four = SpikingNetwork(build_snn(ann, "lmht", L=2, T=4).model, 4, "frames", frame_input="bins")
    with pytest.raises(ValueError, match=r"frame_input='bins'.*10 frames"):
        four(x)
    with pytest.raises(ValueError, match="frame_input"):
        SpikingNetwork(net.model, 4, "frames", frame_input="sum")


def test_dvs_cell_at_t4_runs_on_synthetic_frames():
    """The paper suite's CIFAR10-DVS cell (ResNet-18, L = 2, T = 4, F = 10) on synthetic frames."""
    import lmht.models as zoo

    ds = data.create_dataset("synthetic", like="cifar10_dvs", length=2)
    x = torch.stack([ds[i][0] for i in range(2)])
    assert x.shape == (2, 10, 2, 48, 48) and ds.info.needs_files is False
    ann = zoo.create_model("resnet18", num_classes=10, in_chans=2, widths=(8, 8, 16, 16))
    snn = build_snn(ann, "lmht", L=2, T=4, input_shape=ds.info.input_size, encoding="frames")
    out = snn(x)
    assert out.shape == (4, 2, 10)
    out.mean(0).sum().backward()
    assert all(p.grad is not None for p in snn.parameters() if p.requires_grad)
