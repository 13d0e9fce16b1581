"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009): 50 000 train / 10 000 test RGB 32×32 images.

Read by torchvision from its on-disk layout under ``root`` (``root/cifar-10-batches-py/`` or
``root/cifar-100-python/``); nothing is downloaded unless ``download=True`` is passed. Samples are
``(x, label)`` with ``x`` a float tensor [3, 32, 32]; training augmentation as in
:mod:`lmht.data.transforms` (RandomCrop 32 pad 4 + flip, optional AutoAugment CIFAR10 policy and
Cutout; LM-HT used Cutout 16 px on CIFAR-10, 12 px on CIFAR-100).
"""

from __future__ import annotations

from pathlib import Path

from torchvision import datasets
from torchvision import transforms as T

from .errors import DatasetNotFoundError
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


def _build(
    cls: type[datasets.CIFAR10], label: str, info: DatasetInfo, root: Path | None, train: bool,
    tcfg: TransformConfig, download: bool,
) -> datasets.CIFAR10:  # fmt: skip
    folder = cls.base_folder
    if root is None or not (download or (root / folder).is_dir()):
        raise DatasetNotFoundError(label, root, f"{root or '<root>'}/{folder}/ (torchvision layout)")
    transform = static_transform(
        tcfg,
        train,
        mean=info.mean,
        std=info.std,
        train_crop=(T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()),
        autoaugment_policy=info.autoaugment_policy,
    )
    try:
        return cls(str(root), train=train, transform=transform, download=download)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted."
        raise DatasetNotFoundError(label, root, f"{root / folder}/ (torchvision layout): {err}") from err


@register_dataset(CIFAR10_INFO)
def build_cifar10(
    root: Path | None, train: bool, tcfg: TransformConfig, seed: int, download: bool = False
) -> datasets.CIFAR10:
    """torchvision CIFAR-10 with the paper's transforms."""
    return _build(datasets.CIFAR10, "CIFAR-10", CIFAR10_INFO, root, train, tcfg, download)


@register_dataset(CIFAR100_INFO)
def build_cifar100(
    root: Path | None, train: bool, tcfg: TransformConfig, seed: int, download: bool = False
) -> datasets.CIFAR100:
    """torchvision CIFAR-100 with the paper's transforms."""
    return _build(datasets.CIFAR100, "CIFAR-100", CIFAR100_INFO, root, train, tcfg, download)
