"""Fashion-MNIST (Xiao et al. 2017): 60 000 train / 10 000 test grey 28×28 images, 10 classes.

Where the files come from:

* ``root`` given: the four IDX files (gzipped or not) directly in ``root`` or in
  ``root/FashionMNIST/raw`` (torchvision's layout), and nowhere else. A root that does not hold all
  four (missing folder, empty folder, a file, a copy missing one file) is a
  :class:`DatasetNotFoundError` listing the files expected; with ``download=True`` torchvision
  downloads them into ``root/FashionMNIST/raw`` first.
* ``root`` None (``data_root: null``, unset): the default locations :data:`DEFAULT_ROOTS`, Debian's
  package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) then ``./data``; the folder
  used is logged (logger ``lmht.data``) and kept in the dataset's ``source``.

Every file is validated when the split is opened, before any training step: gzip integrity (CRC and
length), the IDX magic, sizes from the IDX header against the data length, image shape 28×28, equal
image and label counts, and labels in 0..9. A file that fails is a :class:`DataFileError` naming it.

Samples are ``(x, label)`` with ``x`` a float tensor [1, 28, 28] normalized with mean 0.2860 and
std 0.3530. Training augmentation (random crop with padding 2 + horizontal flip) is off by default
to keep the CPU suite fast; ``augment=True`` turns it on.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import DataFileError, DatasetNotFoundError, read_data_file
from .registry import DatasetInfo, register_dataset
from .transforms import TransformConfig, tensor_transform

logger = logging.getLogger("lmht.data")

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
#: searched in this order when no root is given (``data_root: null``)
DEFAULT_ROOTS = (DEBIAN_DIR, Path("data"))
FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
INFO = DatasetInfo(
    name="fashion_mnist",
    num_classes=10,
    in_chans=1,
    image_size=28,
    mean=(0.2860,),
    std=(0.3530,),
    default_augment=False,
    paper_name="Fashion-MNIST",
)
EXPECTED = ", ".join(f"{stem}[.gz]" for stems in FILES.values() for stem in stems)
LAYOUT = f"{EXPECTED} in the root or root/FashionMNIST/raw"
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_logged: set[Path] = set()


def _read_bytes(path: Path) -> bytes:
    raw = read_data_file(path)
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; CRC/length errors too
        raise DataFileError(path, f"corrupt gzip data ({exc or type(exc).__name__})") from exc


def read_idx(path: Path | str) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic ``00 00 <dtype> <ndim>``, ndim big-endian int32 sizes.

    Raises:
        DataFileError: unreadable, empty, corrupt gzip, bad magic, or a data length that differs from
            the one the header's sizes give (truncated or padded file).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataFileError(path, f"not an IDX file (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataFileError(path, f"truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = tuple(int(v) for v in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    if any(d < 0 for d in shape):
        raise DataFileError(path, f"IDX header has a negative size {shape}")
    itemsize = np.dtype(_IDX_DTYPES[raw[2]]).itemsize
    want, have = int(np.prod(shape, dtype=np.int64)) * itemsize, len(raw) - 4 - 4 * ndim
    if have != want:
        what = "truncated" if have < want else "longer than its header says"
        raise DataFileError(path, f"{what}: header says shape {shape} = {want} data bytes, file holds {have}")
    return np.frombuffer(raw, _IDX_DTYPES[raw[2]], offset=4 + 4 * ndim).reshape(shape)


def read_split(image_file: Path, label_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 28, 28] uint8 and labels [N] of one split, validated (see the module docstring)."""
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataFileError(
            image_file, f"expected uint8 images of shape [N, 28, 28], got {images.dtype} {list(images.shape)}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataFileError(
            label_file, f"expected uint8 labels of shape [N], got {labels.dtype} {list(labels.shape)}"
        )
    if len(labels) != len(images):
        raise DataFileError(
            label_file, f"holds {len(labels)} labels for the {len(images)} images of {image_file}"
        )
    bad = np.flatnonzero(labels >= INFO.num_classes)
    if bad.size:
        raise DataFileError(
            label_file,
            f"label {int(labels[bad[0]])} at index {int(bad[0])} is outside 0..{INFO.num_classes - 1} "
            f"({bad.size} labels out of range)",
        )
    return images, labels


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _folder_with_files(root: Path) -> tuple[Path | None, list[str]]:
    """(the folder of ``root`` holding all four files or None, the files missing in the best folder)."""
    best: list[str] | None = None
    for directory in (root, root / "FashionMNIST" / "raw"):
        missing = [f"{s}[.gz]" for stems in FILES.values() for s in stems if _find(directory, s) is None]
        if not missing:
            return directory, []
        if best is None or len(missing) < len(best):
            best = missing
    return None, best or []


def _explicit_root(root: Path, download: bool) -> Path:
    if root.exists() and not root.is_dir():
        raise DatasetNotFoundError("Fashion-MNIST", root, f"a folder, not a file: {LAYOUT}")
    folder, missing = _folder_with_files(root) if root.is_dir() else (None, [])
    if folder is None and download:
        from torchvision.datasets import FashionMNIST  # only imported for the rare download case

        for train in (True, False):
            FashionMNIST(str(root), train=train, download=True)
        folder, missing = _folder_with_files(root)
    if folder is not None:
        return folder
    if not root.exists():
        problem = "the folder does not exist"
    elif len(missing) == 2 * len(FILES):
        problem = "the folder holds none of the files"
    else:
        problem = f"missing {', '.join(missing)}"
    raise DatasetNotFoundError("Fashion-MNIST", root, f"{LAYOUT} ({problem}; set data_root to such a folder)")


def _default_root(download: bool) -> Path:
    for directory in DEFAULT_ROOTS:
        if directory.is_dir():
            folder, _ = _folder_with_files(directory)
            if folder is not None:
                return folder
    if download:
        return _explicit_root(DEFAULT_ROOTS[-1], True)
    searched = ", ".join(str(d) for d in DEFAULT_ROOTS)
    raise DatasetNotFoundError(
        "Fashion-MNIST",
        None,
        f"{LAYOUT} in one of the default locations ({searched}); set data_root, install Debian's "
        "dataset-fashion-mnist, or pass dataset_options={download: true}",
    )


def locate_files(root: Path | None, train: bool, download: bool = False) -> tuple[Path, Path]:
    """Paths of the (images, labels) IDX files of a split, following the module docstring."""
    folder = _explicit_root(root, download) if root is not None else _default_root(download)
    if root is None and folder not in _logged:
        _logged.add(folder)
        logger.info("fashion_mnist: data_root not set; reading %s", folder)
    found = [_find(folder, stem) for stem in FILES[train]]
    return found[0], found[1]  # type: ignore[return-value]  (all present: checked above)


class TensorImageDataset(Dataset):
    """Images held as one uint8 tensor [N, C, H, W] with int64 labels [N]; ``transform`` maps a uint8
    [C, H, W] image to the float sample."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        if images.ndim != 4 or len(images) != len(labels):
            raise ValueError(
                f"images must be [N, C, H, W] with N labels, got {tuple(images.shape)}, {len(labels)}"
            )
        self.images, self.labels, self.transform = images, labels, transform
        self.targets = labels.tolist()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), self.targets[index]


@register_dataset(INFO)
def build_fashion_mnist(
    root: Path | None, train: bool, tcfg: TransformConfig, seed: int, download: bool = False
) -> TensorImageDataset:
    """Fashion-MNIST split as a :class:`TensorImageDataset` of [1, 28, 28] float samples.

    ``download=True`` lets torchvision fetch the files into ``root/FashionMNIST/raw`` (or ``./data``
    when no root is given) when they are not there; off by default, so nothing is fetched silently.
    """
    image_file, label_file = locate_files(root, train, download)
    images, labels = read_split(image_file, label_file)
    transform = tensor_transform(tcfg, train, size=28, padding=2, mean=INFO.mean, std=INFO.std)
    dataset = TensorImageDataset(
        torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)), transform
    )
    dataset.source = image_file.parent
    return dataset
