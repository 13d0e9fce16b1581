"""Fashion-MNIST (Xiao et al. 2017): 60 000 train / 10 000 test grey 28×28 images, 10 classes.

Where the files come from, in order:

1. ``root``: the four IDX files (gzipped or not) directly in ``root`` or in ``root/FashionMNIST/raw``
   (torchvision's layout);
2. Debian's package ``dataset-fashion-mnist``: ``/usr/share/datasets/fashion-mnist/*.gz``;
3. otherwise, with ``download=True`` (the default) and a ``root``, torchvision downloads them into
   ``root/FashionMNIST/raw``; else :class:`DatasetNotFoundError`.

Samples are ``(x, label)`` with ``x`` a float tensor [1, 28, 28] normalized with mean 0.2860 and
std 0.3530. Training augmentation (random crop with padding 2 + horizontal flip) is off by default
to keep the CPU suite fast; ``augment=True`` turns it on.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import DatasetNotFoundError
from .registry import DatasetInfo, register_dataset
from .transforms import TransformConfig, tensor_transform

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
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
LAYOUT = (
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
    f"t10k-labels-idx1-ubyte[.gz] in the root or root/FashionMNIST/raw (or Debian's {DEBIAN_DIR})"
)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path | str) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic ``00 00 <dtype> <ndim>``, ndim big-endian int32 sizes."""
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, _IDX_DTYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape)


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def locate_files(root: Path | None, train: bool, download: bool) -> tuple[Path, Path]:
    """Paths of the (images, labels) IDX files, following the order in the module docstring."""
    dirs = [root, root / "FashionMNIST" / "raw"] if root is not None else []
    for directory in [*dirs, DEBIAN_DIR]:
        found = [_find(directory, stem) for stem in FILES[train]]
        if all(found):
            return found[0], found[1]
    if download and root is not None:
        from torchvision.datasets import FashionMNIST  # only imported for the rare download case

        FashionMNIST(str(root), train=train, download=True)
        found = [_find(root / "FashionMNIST" / "raw", stem) for stem in FILES[train]]
        if all(found):
            return found[0], found[1]
    raise DatasetNotFoundError("Fashion-MNIST", root, LAYOUT)


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
    root: Path | None, train: bool, tcfg: TransformConfig, seed: int, download: bool = True
) -> TensorImageDataset:
    """Fashion-MNIST split as a :class:`TensorImageDataset` of [1, 28, 28] float samples."""
    image_file, label_file = locate_files(root, train, download)
    images = torch.from_numpy(read_idx(image_file).copy()).unsqueeze(1)
    labels = torch.from_numpy(read_idx(label_file).astype(np.int64))
    transform = tensor_transform(tcfg, train, size=28, padding=2, mean=INFO.mean, std=INFO.std)
    return TensorImageDataset(images, labels, transform)
