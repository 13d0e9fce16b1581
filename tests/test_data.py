"""Datasets, transforms and loaders: real Fashion-MNIST files, synthetic data, determinism, error
messages, and the file format of Tiny-ImageNet on a tiny fake copy made here (CIFAR10-DVS: test_dvs.py)."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lmht.data as data
from lmht.data import fashion_mnist
from lmht.data.tiny_imagenet import TinyImageNet

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
needs_fmnist = pytest.mark.skipif(
    not (DEBIAN_FMNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Debian package dataset-fashion-mnist not installed ({DEBIAN_FMNIST} missing)",
)


def batches(loader, epochs=(0,)):
    out = []
    for epoch in epochs:
        data.set_epoch(loader, epoch)
        out += [(x.clone(), y.clone()) for x, y in loader]
    return out


def same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True)
    )


# ---------------------------------------------------------------- registry and info
def test_registry_names_and_info():
    assert data.list_datasets() == sorted(
        ["fashion_mnist", "cifar10", "cifar100", "imagenet200", "imagenet", "cifar10_dvs", "synthetic"]
    )
    assert data.dataset_info("cifar100").num_classes == 100
    assert data.dataset_info("imagenet200").input_size == (3, 64, 64)
    dvs = data.dataset_info("cifar10_dvs")
    assert (dvs.encoding, dvs.input_size) == ("frames", (10, 2, 48, 48))
    assert data.dataset_info("cifar10_dvs", frames=8).input_size == (8, 2, 48, 48)
    assert data.dataset_info("fashion_mnist").input_size == (1, 28, 28)
    syn = data.dataset_info("synthetic", num_classes=4, image_size=8, in_chans=1)
    assert (syn.num_classes, syn.input_size) == (4, (1, 8, 8))
    with pytest.raises(ValueError, match="known datasets"):
        data.dataset_info("mnist")
    with pytest.raises(ValueError, match="bogus"):
        data.create_dataset("synthetic", bogus=1)


# ---------------------------------------------------------------- Fashion-MNIST
@needs_fmnist
def test_fashion_mnist_from_debian_files():
    train = data.create_dataset("fashion_mnist", None, True)
    test = data.create_dataset("fashion_mnist", None, False)
    assert (len(train), len(test)) == (60000, 10000)
    x, y = train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    assert set(train.targets) == set(range(10)) and set(test.targets) == set(range(10))
    assert np.bincount(test.targets).tolist() == [1000] * 10
    assert abs(train.images[:2000].float().div(255).mean().item() - 0.286) < 0.02
    assert train.info.in_chans == 1


@needs_fmnist
def test_idx_reader_matches_header(tmp_path):
    labels = fashion_mnist.read_idx(DEBIAN_FMNIST / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        fashion_mnist.read_idx(bad)


def test_idx_file_in_user_root(tmp_path):
    """A root holding (tiny) IDX files is used, never the Debian copy."""
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    for split in ("t10k", "train"):
        for stem, arr in (
            (f"{split}-images-idx3-ubyte", images),
            (f"{split}-labels-idx1-ubyte", np.array([0, 1, 2], np.uint8)),
        ):
            header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">i", d) for d in arr.shape)
            (tmp_path / stem).write_bytes(header + arr.tobytes())
    ds = data.create_dataset("fashion_mnist", tmp_path, False, normalize=False)
    assert len(ds) == 3 and ds.targets == [0, 1, 2]
    assert torch.allclose(ds[1][0] * 255, torch.from_numpy(images[1]).float().unsqueeze(0))
    assert ds.source == tmp_path


# ---------------------------------------------------------------- synthetic + loader determinism
def test_synthetic_determinism_and_shapes():
    kw = dict(num_classes=4, image_size=8, length=64)
    a = data.create_dataset("synthetic", train=True, seed=1, **kw)
    b = data.create_dataset("synthetic", train=True, seed=1, **kw)
    c = data.create_dataset("synthetic", train=True, seed=2, **kw)
    test = data.create_dataset("synthetic", train=False, seed=1, **kw)
    assert torch.equal(a.data, b.data) and not torch.equal(a.data, c.data)
    assert not torch.equal(a.data, test.data[: len(a)])
    assert a[0][0].shape == (3, 8, 8) and np.bincount(a.targets).tolist() == [16] * 4
    la = batches(data.create_loader(a, 16, True, seed=3))
    lb = batches(data.create_loader(b, 16, True, seed=3))
    lc = batches(data.create_loader(c, 16, True, seed=3))
    ld = batches(data.create_loader(a, 16, True, seed=4))
    assert same(la, lb) and not same(la, lc) and not same(la, ld)
    frames = data.create_dataset("synthetic", frames=4, image_size=8, length=8)
    assert frames[0][0].shape == (4, 3, 8, 8) and frames.info.encoding == "frames"


def test_synthetic_is_learnable_by_nearest_prototype():
    train = data.create_dataset("synthetic", train=True, num_classes=5, image_size=8, length=200)
    test = data.create_dataset("synthetic", train=False, num_classes=5, image_size=8, length=200)
    means = torch.stack([train.data[train.labels == c].mean(0) for c in range(5)]).flatten(1)
    pred = torch.cdist(test.data.flatten(1), means).argmin(1)
    assert (pred == test.labels).float().mean() > 0.9


@needs_fmnist
def test_loader_determinism_with_augmentation():
    ds = data.create_dataset("fashion_mnist", None, True, augment=True, cutout=8, subset=96)
    first = batches(data.create_loader(ds, 32, True, seed=0), epochs=(0, 1))
    again = batches(data.create_loader(ds, 32, True, seed=0), epochs=(0, 1))
    assert same(first, again)
    # same order in both epochs? no: order and augmentation depend on the epoch
    assert not same(first[:3], first[3:])
    # a sample's augmentation depends on (seed, epoch, index) only, not on batch size or workers
    two_workers = batches(data.create_loader(ds, 32, True, seed=0, workers=2), epochs=(0, 1))
    assert same(first, two_workers)
    other_seed = batches(data.create_loader(ds, 32, True, seed=1), epochs=(0,))
    assert not same(first[:3], other_seed)


def test_loader_leaves_global_rng_alone_and_eval_is_sequential():
    ds = data.create_dataset("synthetic", length=40, image_size=8)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    batches(data.create_loader(ds, 8, True, seed=0))
    assert torch.equal(torch.rand(3), expected)
    ys = torch.cat([y for _, y in data.create_loader(ds, 16, False)])
    assert ys.tolist() == ds.targets  # no shuffling, no dropped samples at evaluation
    train_loader = data.create_loader(ds, 16, True)
    assert sum(len(y) for _, y in train_loader) == 32  # drop_last for training


def test_stratified_subset():
    ds = data.create_dataset("synthetic", length=100, num_classes=5, image_size=4)
    sub = data.stratified_subset(ds, 20, seed=0)
    assert np.bincount(sub.targets, minlength=5).tolist() == [4] * 5
    assert sub.indices == data.stratified_subset(ds, 20, seed=0).indices
    assert sub.indices != data.stratified_subset(ds, 20, seed=1).indices
    assert set(data.stratified_subset(ds, 10, seed=0).indices) <= set(sub.indices)
    via_factory = data.create_dataset("synthetic", length=100, num_classes=5, image_size=4, subset=20)
    assert len(via_factory) == 20 and via_factory.info.num_classes == 5


def test_cutout_and_mixup():
    torch.manual_seed(0)
    out = data.Cutout(4)(torch.ones(3, 16, 16))
    zeros = (out == 0).all(0).sum().item()
    assert 0 < zeros <= 16 and out.shape == (3, 16, 16)
    assert data.create_mixup({"mixup": 0, "cutmix": 0}, 10) is None
    mix = data.create_mixup({"mixup": 0.8, "cutmix": 1.0, "label_smoothing": 0.1}, 10)
    np.random.seed(0)  # noqa: NPY002  (timm Mixup draws from the legacy global generator)
    x, y = mix(torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]))
    assert x.shape == (4, 3, 8, 8) and y.shape == (4, 10) and torch.allclose(y.sum(1), torch.ones(4))
    xf, yf = mix(torch.randn(4, 5, 2, 8, 8), torch.tensor([0, 1, 2, 3]))
    assert xf.shape == (4, 5, 2, 8, 8) and yf.shape == (4, 10)
    with pytest.raises(ValueError, match="even"):
        mix(torch.randn(3, 3, 8, 8), torch.tensor([0, 1, 2]))


# ---------------------------------------------------------------- missing datasets
@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("imagenet", "ImageFolder"),
        ("imagenet200", "val_annotations.txt"),
        ("cifar10_dvs", "events_np"),
    ],
)
def test_missing_dataset_names_path_and_layout(tmp_path, name, hint):
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        data.create_dataset(name, root, train=True)
    assert isinstance(err.value, data.DatasetNotFoundError)
    assert str(root) in str(err.value) and hint in str(err.value)


def test_missing_fashion_mnist_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(data.DatasetNotFoundError, match=re.escape(str(tmp_path))):
        data.create_dataset("fashion_mnist", tmp_path, True, download=False)


# ---------------------------------------------------------------- Tiny-ImageNet
def make_fake_tiny(root: Path) -> None:
    for k, wnid in enumerate(("n02", "n01")):
        d = root / "train" / wnid / "images"
        d.mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (64, 64), (40 * k, 10 * i, 0)).save(d / f"{wnid}_{i}.JPEG")
    (root / "val" / "images").mkdir(parents=True)
    lines = []
    for i, wnid in enumerate(("n01", "n02", "n02")):
        Image.new("RGB", (64, 64), (0, 0, 50 * i)).save(root / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def test_tiny_imagenet_layout(tmp_path):
    make_fake_tiny(tmp_path)
    train = data.create_dataset("imagenet200", tmp_path, True)
    val = data.create_dataset("imagenet200", tmp_path, False)
    assert train.classes == ["n01", "n02"] and len(train) == 6
    assert train.targets == [0, 0, 0, 1, 1, 1]
    assert val.targets == [0, 1, 1]
    x, y = val[2]
    assert x.shape == (3, 64, 64) and y == 1
    xa, _ = data.create_dataset("imagenet200", tmp_path, True, autoaugment=True, cutout=8)[0]
    assert xa.shape == (3, 64, 64)
    (tmp_path / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\n")
    with pytest.raises(data.DataFileError, match=r"val_1\.JPEG: validation image has no line"):
        TinyImageNet(tmp_path, train=False)
