"""Bad data never trains silently: explicit data roots never fall back, corrupt files are named.

Tiny copies of each on-disk format are written here, then damaged one way at a time. Each damage is
found when the dataset is opened (not at a training step) and raises DataFileError / DatasetNotFoundError
naming the file; through the CLI each gives exit status 2 and one line on stderr.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_data import make_fake_tiny  # the same Tiny-ImageNet layout as the loader tests
from torchvision import datasets as tv_datasets

import lmht.data as data
from lmht import cli
from lmht.data import fashion_mnist

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
SMALL_MODEL = ["arch=fmnist_cnn", "epochs=1", "batch_size=4", "progress=false"]


def error_lines(err: str) -> list[str]:
    """stderr lines that are not warnings or info (`lmht: ...` from the lmht loggers)."""
    return [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("lmht: ")]


def run_cli(capsys, *args) -> tuple[int, str]:
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def assert_one_line_naming(code: int, err: str, path: Path, message: str) -> None:
    lines = error_lines(err)
    assert code == 2, err
    assert len(lines) == 1, err
    assert str(path) in lines[0] and message in lines[0], err
    assert "Traceback" not in err


# ==================================================================================================
# Fashion-MNIST: IDX files
# ==================================================================================================
def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">i", d) for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def make_fmnist(root: Path, n: int = 20, gz: bool = True) -> None:
    """All four IDX files with ``n`` images per split, labels cycling over the 10 classes."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split in ("train", "t10k"):
        for kind, arr in (
            ("images-idx3", rng.integers(0, 256, (n, 28, 28))),
            ("labels-idx1", np.arange(n) % 10),
        ):
            raw = idx_bytes(arr)
            name = f"{split}-{kind}-ubyte"
            (root / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)


def _flip_two(raw: bytes) -> bytes:
    b = bytearray(raw)
    b[len(b) // 2] ^= 0xFF
    b[len(b) // 2 + 7] ^= 0x55
    return bytes(b)


def _regz(path: Path, fn) -> None:
    """Rewrite a .gz IDX file with ``fn`` applied to its decompressed content."""
    path.write_bytes(gzip.compress(fn(gzip.decompress(path.read_bytes()))))


IDX_CASES = {
    # name: (file, damage(path), message)
    "truncated gzip": (
        "train-images-idx3-ubyte.gz",
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        "corrupt gzip data",
    ),
    "two flipped gzip bytes": (
        "t10k-images-idx3-ubyte.gz",
        lambda p: p.write_bytes(_flip_two(p.read_bytes())),
        "corrupt gzip data",
    ),
    "not gzip at all": ("t10k-labels-idx1-ubyte.gz", lambda p: p.write_bytes(b"plain text"), "corrupt gzip"),
    "empty file": ("t10k-labels-idx1-ubyte.gz", lambda p: p.write_bytes(b""), "empty file"),
    "truncated IDX data": (
        "train-labels-idx1-ubyte.gz",
        lambda p: _regz(p, lambda raw: raw[:-3]),
        "truncated: header says shape (20,)",
    ),
    "IDX longer than its header": (
        "t10k-images-idx3-ubyte.gz",
        lambda p: _regz(p, lambda raw: raw + b"\0" * 5),
        "longer than its header says",
    ),
    "bad IDX magic": (
        "train-images-idx3-ubyte.gz",
        lambda p: _regz(p, lambda raw: b"\x01" + raw[1:]),
        "not an IDX file",
    ),
    "labels out of range": (
        "t10k-labels-idx1-ubyte.gz",
        lambda p: p.write_bytes(gzip.compress(idx_bytes(np.array([3] * 19 + [12])))),
        "label 12 at index 19 is outside 0..9",
    ),
    "fewer labels than images": (
        "train-labels-idx1-ubyte.gz",
        lambda p: p.write_bytes(gzip.compress(idx_bytes(np.arange(19) % 10))),
        "holds 19 labels for the 20 images",
    ),
    "images of the wrong size": (
        "t10k-images-idx3-ubyte.gz",
        lambda p: p.write_bytes(gzip.compress(idx_bytes(np.zeros((20, 27, 27))))),
        "expected uint8 images of shape [N, 28, 28]",
    ),
}


@pytest.mark.parametrize("case", list(IDX_CASES))
def test_corrupt_fashion_mnist_file_is_named_when_opened(case, tmp_path, capsys):
    name, damage, message = IDX_CASES[case]
    make_fmnist(tmp_path / "fm")
    path = tmp_path / "fm" / name
    damage(path)
    split_is_train = name.startswith("train")
    with pytest.raises(data.DataFileError) as err:
        data.create_dataset("fashion_mnist", tmp_path / "fm", train=split_is_train)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert err.value.path == path
    out = tmp_path / "out"
    code, err_text = run_cli(capsys, "ann", "-o", out, f"data_root={tmp_path / 'fm'}", *SMALL_MODEL)
    assert_one_line_naming(code, err_text, path, message)
    assert not (out / "metrics.json").exists() and not (out / "checkpoint.pt").exists()


def test_uncompressed_truncated_idx_is_named(tmp_path):
    make_fmnist(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.DataFileError, match="truncated: header says shape"):
        data.create_dataset("fashion_mnist", tmp_path, train=False)


def test_valid_fashion_mnist_copy_loads(tmp_path):
    make_fmnist(tmp_path / "FashionMNIST" / "raw")  # torchvision's layout under the root
    ds = data.create_dataset("fashion_mnist", tmp_path, train=True, normalize=False)
    assert len(ds) == 20 and ds.targets == [i % 10 for i in range(20)]
    assert ds.source == tmp_path / "FashionMNIST" / "raw"


# ------------------------------------------------------------------------- data roots: no fallback
def _missing_one(root: Path) -> None:
    make_fmnist(root)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()


ROOT_CASES = {
    "nonexistent": (lambda root: None, "the folder does not exist"),
    "empty folder": (lambda root: root.mkdir(), "the folder holds none of the files"),
    "a file": (lambda root: root.write_text("x"), "a folder, not a file"),
    "copy missing one file": (_missing_one, "missing t10k-labels-idx1-ubyte[.gz]"),
    "copy missing a train file": (
        lambda root: (make_fmnist(root), (root / "train-images-idx3-ubyte.gz").unlink()),
        "missing train-images-idx3-ubyte[.gz]",
    ),
}


@pytest.mark.parametrize("case", list(ROOT_CASES))
def test_explicit_data_root_never_falls_back(case, tmp_path, capsys):
    """Even where Debian's Fashion-MNIST is installed, a given root that lacks the files is an error
    naming data_root and the files expected, before any work (no output folder)."""
    make, problem = ROOT_CASES[case]
    root = tmp_path / "fm"
    make(root)
    out = tmp_path / "out"
    code, err = run_cli(capsys, "direct", "-o", out, f"data_root={root}", *SMALL_MODEL)
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1, err
    assert "'data_root'" in lines[0] and str(root) in lines[0] and problem in lines[0]
    for stem in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert stem in lines[0]  # the files expected are listed
    assert not out.exists()
    with pytest.raises(data.DatasetNotFoundError):
        data.create_dataset("fashion_mnist", root, train=True)


def test_unset_data_root_uses_default_locations_and_logs_them(tmp_path, monkeypatch, caplog):
    make_fmnist(tmp_path / "default")
    monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOTS", (tmp_path / "nothing", tmp_path / "default"))
    monkeypatch.setattr(fashion_mnist, "_logged", set())
    with caplog.at_level("INFO", logger="lmht.data"):
        ds = data.create_dataset("fashion_mnist", None, train=False)
    assert len(ds) == 20 and ds.source == tmp_path / "default"
    assert f"data_root not set; reading {tmp_path / 'default'}" in caplog.text
    monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOTS", (tmp_path / "nothing",))
    with pytest.raises(data.DatasetNotFoundError, match="set data_root") as err:
        data.create_dataset("fashion_mnist", None, train=False)
    assert str(tmp_path / "nothing") in str(err.value)  # the places searched


@pytest.mark.skipif(not DEBIAN_FMNIST.is_dir(), reason="Debian's dataset-fashion-mnist not installed")
def test_default_config_reads_debian_copy_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "_logged", set())
    assert run_cli(capsys, "ann", "--print-config")[0] == 0
    code = cli.main(["ann", "-o", str(tmp_path / "o"), "train_subset=40", "test_subset=20", *SMALL_MODEL])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"lmht: fashion_mnist: data_root not set; reading {DEBIAN_FMNIST}" in captured.out


# ==================================================================================================
# CIFAR-10 / CIFAR-100 pickles
# ==================================================================================================
class _Payload:
    """Unpickling this runs a shell command that creates the marker file (what a crafted file does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def cifar_batch(n: int, num_classes: int = 10, seed: int = 0, label_key: str = "labels") -> dict:
    rng = np.random.default_rng(seed)
    return {
        "batch_label": "fake",
        label_key: [i % num_classes for i in range(n)],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img{i}.png" for i in range(n)],
    }


def make_cifar10(root: Path, n: int = 4) -> Path:
    folder = root / tv_datasets.CIFAR10.base_folder
    folder.mkdir(parents=True)
    for k, (name, _) in enumerate(tv_datasets.CIFAR10.train_list + tv_datasets.CIFAR10.test_list):
        (folder / name).write_bytes(pickle.dumps(cifar_batch(n, seed=k), protocol=2))
    meta = {"label_names": [f"c{i}" for i in range(10)], "num_cases_per_batch": n, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def _rewrite(path: Path, **changes) -> None:
    entry = pickle.loads(path.read_bytes())
    for key, value in changes.items():
        if value is None:
            del entry[key]
        else:
            entry[key] = value
    path.write_bytes(pickle.dumps(entry))


CIFAR_CASES = {
    "garbage bytes": (
        "test_batch",
        lambda p: p.write_bytes(b"\x80\x02garbage"),
        "not a readable CIFAR pickle",
    ),
    "truncated pickle": (
        "data_batch_3",
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        "not a readable CIFAR pickle",
    ),
    "empty file": ("data_batch_5", lambda p: p.write_bytes(b""), "empty file"),
    "wrong keys": ("test_batch", lambda p: _rewrite(p, data=None), "expected keys 'data' and 'labels'"),
    "wrong shape": (
        "test_batch",
        lambda p: _rewrite(p, data=np.zeros((4, 1000), np.uint8)),
        "'data' must be uint8 [N, 3072], got uint8 [4, 1000]",
    ),
    "labels out of range": (
        "data_batch_1",
        lambda p: _rewrite(p, labels=[0, 1, 10, 2]),
        "label 10 at index 2",
    ),
    "label count": ("test_batch", lambda p: _rewrite(p, labels=[0, 1, 2]), "holds 3 labels for 4 images"),
}


@pytest.mark.parametrize("case", list(CIFAR_CASES))
def test_corrupt_cifar_batch_is_named_when_opened(case, tmp_path, capsys):
    name, damage, message = CIFAR_CASES[case]
    folder = make_cifar10(tmp_path)
    damage(folder / name)
    with pytest.raises(data.DataFileError) as err:
        data.create_dataset("cifar10", tmp_path, train=name != "test_batch", verify_checksums=False)
    assert str(err.value).startswith(f"{folder / name}: ") and message in str(err.value)
    code, err_text = run_cli(
        capsys,
        "ann",
        "-o",
        tmp_path / "out",
        "dataset=cifar10",
        f"data_root={tmp_path}",
        "dataset_options={verify_checksums: false}",
        "model_options={img_size: 32, widths: [4, 4], hidden: 8}",
        *SMALL_MODEL,
    )
    assert_one_line_naming(code, err_text, folder / name, message)


def test_valid_cifar_copy_loads_and_checksums_are_verified(tmp_path):
    folder = make_cifar10(tmp_path)
    train = data.create_dataset(
        "cifar10", tmp_path, train=True, augment=False, normalize=False, verify_checksums=False
    )
    assert len(train) == 20 and train.targets[:5] == [0, 1, 2, 3, 0] and train.classes[0] == "c0"
    x, y = train[1]
    raw = pickle.loads((folder / "data_batch_1").read_bytes())["data"][1]
    assert x.shape == (3, 32, 32) and y == 1
    assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(raw.reshape(3, 32, 32)))
    with pytest.raises(data.DataFileError, match="differs from the official file") as err:
        data.create_dataset("cifar10", tmp_path, train=False)  # fake files: not the official MD5
    assert str(folder / "test_batch") in str(err.value)


def test_cifar_copy_missing_a_file_lists_it(tmp_path):
    folder = make_cifar10(tmp_path)
    (folder / "data_batch_2").unlink()
    with pytest.raises(data.DatasetNotFoundError, match="missing data_batch_2") as err:
        data.create_dataset("cifar10", tmp_path, train=False, verify_checksums=False)
    assert "test_batch" in str(err.value) and "batches.meta" in str(err.value)


def test_cifar_pickle_cannot_run_code(tmp_path):
    folder = make_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    evil = folder / "test_batch"
    evil.write_bytes(pickle.dumps({"data": _Payload(marker), "labels": [0]}, protocol=2))
    with pytest.raises(data.DataFileError, match=r"refused global posix\.system"):
        data.create_dataset("cifar10", tmp_path, train=False, verify_checksums=False)
    assert not marker.exists()
    pickle.loads(evil.read_bytes())  # the payload is live: a plain unpickler runs it
    assert marker.exists()


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / tv_datasets.CIFAR100.base_folder
    folder.mkdir()
    for name in ("train", "test"):
        batch = cifar_batch(6, num_classes=100, label_key="fine_labels")
        batch["fine_labels"] = [0, 50, 99, 1, 2, 3]
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}))
    ds = data.create_dataset("cifar100", tmp_path, train=False, verify_checksums=False)
    assert ds.targets == [0, 50, 99, 1, 2, 3]
    _rewrite(folder / "test", fine_labels=[0, 50, 100, 1, 2, 3])
    with pytest.raises(data.DataFileError, match=r"label 100 at index 2 is outside 0\.\.99"):
        data.create_dataset("cifar100", tmp_path, train=False, verify_checksums=False)


# ==================================================================================================
# Tiny-ImageNet and ImageNet folders
# ==================================================================================================
def _empty_class(root: Path) -> None:
    for p in (root / "train" / "n01" / "images").iterdir():
        p.unlink()


TINY_CASES = {
    # name: (damage(root), path at fault relative to root, message, split that finds it)
    "empty class folder": (_empty_class, "train/n01/images", "class folder holds no images", True),
    "missing val_annotations.txt": (
        lambda r: (r / "val" / "val_annotations.txt").unlink(),
        "val/val_annotations.txt",
        "not found",
        False,
    ),
    "garbled val_annotations.txt": (
        lambda r: (r / "val" / "val_annotations.txt").write_bytes(b"\xff\xfe\x00garbage\x81"),
        "val/val_annotations.txt",
        "cannot be read as text",
        False,
    ),
    "malformed annotation line": (
        lambda r: (r / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\nval_1.JPEG n02\n"),
        "val/val_annotations.txt",
        "line 2: expected",
        False,
    ),
    "annotation with an unknown class": (
        lambda r: (r / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn07\n"),
        "val/val_annotations.txt",
        "wnids without a train folder: ['n07']",
        False,
    ),
    "validation image without annotation": (
        lambda r: (r / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\nval_2.JPEG\tn02\n"),
        "val/images/val_1.JPEG",
        "validation image has no line",
        False,
    ),
}


@pytest.mark.parametrize("case", list(TINY_CASES))
def test_tiny_imagenet_layout_errors_name_the_path(case, tmp_path):
    damage, rel, message, train = TINY_CASES[case]
    make_fake_tiny(tmp_path)
    damage(tmp_path)
    with pytest.raises((data.DataFileError, data.DatasetNotFoundError)) as err:
        data.create_dataset("imagenet200", tmp_path, train=train)
    assert str(tmp_path / rel) in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "empty", "not an image"])
def test_undecodable_image_is_named(damage, tmp_path, capsys):
    make_fake_tiny(tmp_path)
    bad = tmp_path / "train" / "n01" / "images" / "n01_1.JPEG"
    content = {"truncated": bad.read_bytes()[:200], "empty": b"", "not an image": b"hello"}[damage]
    bad.write_bytes(content)
    ds = data.create_dataset("imagenet200", tmp_path, train=True)  # listing does not decode
    with pytest.raises(data.DataFileError, match="cannot be decoded as an image") as err:
        ds[1]
    assert err.value.path == bad
    code, err_text = run_cli(
        capsys,
        "ann",
        "-o",
        tmp_path / "out",
        "dataset=imagenet200",
        f"data_root={tmp_path}",
        "model_options={img_size: 64, widths: [2, 2], hidden: 4}",
        "batch_size=6",
        "arch=fmnist_cnn",
        "epochs=1",
        "progress=false",
    )
    assert_one_line_naming(code, err_text, bad, "cannot be decoded as an image")


def test_data_error_in_a_loader_worker_is_one_line(tmp_path, capsys):
    """With workers > 0 the DataLoader re-raises a worker's DataFileError as a RuntimeError holding
    the worker's traceback; the CLI still prints the one-line message naming the file."""
    make_fake_tiny(tmp_path)
    bad = tmp_path / "val" / "images" / "val_2.JPEG"
    bad.write_bytes(b"garbage")
    loader = data.create_loader(
        data.create_dataset("imagenet200", tmp_path, train=False), 3, False, workers=1
    )
    with pytest.raises(RuntimeError, match="Caught DataFileError") as err:
        list(loader)
    message = cli._worker_data_error(err.value)
    assert message.startswith(f"{bad}: cannot be decoded as an image (") and "\n" not in message
    assert cli._worker_data_error(RuntimeError("CUDA out of memory")) is None


def make_imagenet(root: Path) -> None:
    for split in ("train", "val"):
        for wnid in ("n01", "n02"):
            d = root / split / wnid
            d.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (32, 32), (i, 0, 0)).save(d / f"{wnid}_{i}.JPEG")


def test_imagenet_empty_class_folder_and_bad_image(tmp_path):
    make_imagenet(tmp_path)
    assert len(data.create_dataset("imagenet", tmp_path, train=False)) == 4
    for p in (tmp_path / "val" / "n02").iterdir():
        p.unlink()
    with pytest.raises(data.DataFileError, match="class folder holds no images") as err:
        data.create_dataset("imagenet", tmp_path, train=False)
    assert err.value.path == tmp_path / "val" / "n02"
    bad = tmp_path / "train" / "n02" / "n02_0.JPEG"
    bad.write_bytes(bad.read_bytes()[:100])
    ds = data.create_dataset("imagenet", tmp_path, train=True)
    with pytest.raises(data.DataFileError, match="cannot be decoded") as err:
        ds[ds.samples.index((str(bad), 1))]
    assert err.value.path == bad
