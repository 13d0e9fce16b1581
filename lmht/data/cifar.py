"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009): 50 000 train / 10 000 test RGB 32×32 images.

Read from torchvision's on-disk layout under ``root`` (``root/cifar-10-batches-py/`` or
``root/cifar-100-python/``, the python pickles of the official archives); nothing is downloaded unless
``download=True`` is passed. Samples are ``(x, label)`` with ``x`` a float tensor [3, 32, 32]; training
augmentation as in :mod:`lmht.data.transforms` (RandomCrop 32 pad 4 + flip, optional AutoAugment
CIFAR10 policy and Cutout; LM-HT used Cutout 16 px on CIFAR-10, 12 px on CIFAR-100). Images go
through PIL exactly as in torchvision's ``CIFAR10``, so samples are the same as with that class.

Validation when a split is opened (each failure a :class:`DataFileError` naming the file): the batch
files are unpickled by a restricted unpickler that only rebuilds NumPy arrays (a crafted pickle cannot
run code), must hold ``data`` uint8 [N, 3072] and N labels (``labels``, CIFAR-100 ``fine_labels``) in
0..classes-1, and, with ``verify_checksums=True`` (default), must have the MD5 of the official files.
A missing folder or file is a :class:`DatasetNotFoundError` listing the files expected.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import datasets
from torchvision import transforms as T

from .errors import DataFileError, DatasetNotFoundError, read_data_file
from .registry import DatasetInfo, register_dataset
from .transforms import TransformConfig, static_transform

CIFAR10_INFO = DatasetInfo(
    name="cifar10",
    num_classes=10,
    in_chans=3,
    image_size=32,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2023, 0.1994, 0.2010),  # the authors' dataprocess.py
    autoaugment_policy="cifar10",
    paper_name="CIFAR-10",
)
CIFAR100_INFO = DatasetInfo(
    name="cifar100",
    num_classes=100,
    in_chans=3,
    image_size=32,
    mean=tuple(v / 255 for v in (129.3, 124.1, 112.4)),  # the authors' dataprocess.py
    std=tuple(v / 255 for v in (68.2, 65.4, 70.4)),
    autoaugment_policy="cifar10",
    paper_name="CIFAR-100",
)

#: the only globals a CIFAR pickle may name: NumPy array reconstruction and latin-1 byte strings
_SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (only NumPy arrays are allowed)")
        with warnings.catch_warnings():  # numpy.core is a deprecated alias under NumPy 2
            warnings.simplefilter("ignore")
            return super().find_class(module, name)


def read_batch(path: Path) -> dict[str, Any]:
    """Unpickle one CIFAR python batch (restricted to NumPy arrays); DataFileError naming it on failure."""
    raw = read_data_file(path)
    try:
        entry = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:  # UnpicklingError, EOFError (truncated), ValueError, ... : all mean unusable
        raise DataFileError(path, f"not a readable CIFAR pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(entry, dict):
        raise DataFileError(path, f"expected a dict, got {type(entry).__name__}")
    return entry


def _check_batch(
    path: Path, entry: dict[str, Any], label_key: str, num_classes: int
) -> tuple[np.ndarray, list]:
    data = entry.get("data")
    if label_key not in entry or data is None:
        raise DataFileError(path, f"expected keys 'data' and '{label_key}', found {sorted(map(str, entry))}")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = list(data.shape) if isinstance(data, np.ndarray) else type(data).__name__
        dtype = data.dtype if isinstance(data, np.ndarray) else ""
        raise DataFileError(path, f"'data' must be uint8 [N, 3072], got {dtype} {shape}")
    labels = entry[label_key]
    try:
        labels = [int(v) for v in labels]
    except (TypeError, ValueError) as exc:
        raise DataFileError(path, f"'{label_key}' must be a list of integers ({exc})") from exc
    if len(labels) != len(data):
        raise DataFileError(path, f"holds {len(labels)} labels for {len(data)} images")
    bad = [(i, v) for i, v in enumerate(labels) if not 0 <= v < num_classes]
    if bad:
        i, v = bad[0]
        raise DataFileError(
            path, f"label {v} at index {i} is outside 0..{num_classes - 1} ({len(bad)} labels out of range)"
        )
    return data, labels


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class CIFARArrays(Dataset):
    """A CIFAR split held as uint8 HWC images [N, 32, 32, 3]: ``(transform(PIL image), label)``."""

    def __init__(self, data: np.ndarray, targets: list[int], classes: list[str], transform=None) -> None:
        self.data, self.targets, self.classes, self.transform = data, targets, classes, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img = Image.fromarray(self.data[index])
        return (self.transform(img) if self.transform else img), self.targets[index]


def load_cifar(
    cls: type[datasets.CIFAR10], label: str, info: DatasetInfo, root: Path | None, train: bool,
    verify_checksums: bool = True,
) -> tuple[np.ndarray, list[int], list[str]]:  # fmt: skip
    """(images [N, 32, 32, 3] uint8, labels, class names) of one split, validated (module docstring)."""
    folder_name = cls.base_folder
    expected = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    layout = f"{root or '<root>'}/{folder_name}/ with {', '.join(expected)} (torchvision layout)"
    if root is None:
        raise DatasetNotFoundError(label, root, layout)
    folder = root / folder_name
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        problem = "folder does not exist" if not folder.is_dir() else f"missing {', '.join(missing)}"
        raise DatasetNotFoundError(label, root, f"{layout} ({problem})")
    label_key = "labels" if info.num_classes == 10 else "fine_labels"
    data, targets = [], []
    for name, md5 in cls.train_list if train else cls.test_list:
        path = folder / name
        images, labels = _check_batch(path, read_batch(path), label_key, info.num_classes)
        digest = _md5(path) if verify_checksums else md5
        if digest != md5:
            raise DataFileError(
                path, f"MD5 {digest} differs from the official file's {md5} (corrupt or modified copy)"
            )
        data.append(images)
        targets += labels
    meta_path = folder / cls.meta["filename"]
    meta = read_batch(meta_path)
    classes = meta.get(cls.meta["key"])
    if not isinstance(classes, list) or len(classes) != info.num_classes:
        raise DataFileError(meta_path, f"'{cls.meta['key']}' must list {info.num_classes} class names")
    images = np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))
    return np.ascontiguousarray(images), targets, [str(c) for c in classes]


def _build(
    cls: type[datasets.CIFAR10], label: str, info: DatasetInfo, root: Path | None, train: bool,
    tcfg: TransformConfig, download: bool, verify_checksums: bool,
) -> CIFARArrays:  # fmt: skip
    if download and root is not None:
        try:
            cls(str(root), train=train, download=True)  # torchvision fetches and checks the archive
        except RuntimeError as err:
            raise DatasetNotFoundError(
                label, root, f"{root / cls.base_folder}/ (download failed: {err})"
            ) from err
    images, targets, classes = load_cifar(cls, label, info, root, train, verify_checksums)
    transform = static_transform(
        tcfg,
        train,
        mean=info.mean,
        std=info.std,
        train_crop=(T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()),
        autoaugment_policy=info.autoaugment_policy,
    )
    return CIFARArrays(images, targets, classes, transform)


@register_dataset(CIFAR10_INFO)
def build_cifar10(
    root: Path | None, train: bool, tcfg: TransformConfig, seed: int, download: bool = False,
    verify_checksums: bool = True,
) -> CIFARArrays:  # fmt: skip
    """CIFAR-10 with the paper's transforms (``verify_checksums``: MD5 of the official batch files)."""
    return _build(datasets.CIFAR10, "CIFAR-10", CIFAR10_INFO, root, train, tcfg, download, verify_checksums)


@register_dataset(CIFAR100_INFO)
def build_cifar100(
    root: Path | None, train: bool, tcfg: TransformConfig, seed: int, download: bool = False,
    verify_checksums: bool = True,
) -> CIFARArrays:  # fmt: skip
    """CIFAR-100 with the paper's transforms (``verify_checksums``: MD5 of the official files)."""
    return _build(
        datasets.CIFAR100, "CIFAR-100", CIFAR100_INFO, root, train, tcfg, download, verify_checksums
    )
