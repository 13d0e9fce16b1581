"""ImageNet-1k (ILSVRC 2012) as two torchvision ``ImageFolder`` trees.

Layout: ``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG`` (validation images sorted into
class folders, e.g. with the usual ``valprep.sh``); classes are the sorted wnids. Samples are
``(x, label)`` with ``x`` [3, 224, 224]: training RandomResizedCrop(224) + flip (optional
AutoAugment IMAGENET policy, Cutout), test Resize(256) + CenterCrop(224).

Errors, each naming the path: a missing split folder (:class:`DatasetNotFoundError`), a class folder
without images, and an image that fails to decode when it is loaded (:class:`DataFileError`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image
from torchvision import datasets
from torchvision import transforms as T

from .errors import DataFileError, DatasetNotFoundError
from .registry import DatasetInfo, register_dataset
from .transforms import TransformConfig, static_transform

INFO = DatasetInfo(
    name="imagenet",
    num_classes=1000,
    in_chans=3,
    image_size=224,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    autoaugment_policy="imagenet",
    paper_name="ImageNet-1k",
)


def open_rgb(path: str | Path) -> Image.Image:
    """Decode an image file as RGB; :class:`DataFileError` naming the file when it cannot be decoded."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:  # truncated, garbled
        raise DataFileError(path, f"cannot be decoded as an image ({type(exc).__name__}: {exc})") from exc


def check_class_folders(split: Path, classes: list[str], targets: list[int]) -> None:
    """DataFileError naming the first class folder of ``split`` that holds no image."""
    counts = Counter(targets)
    empty = [c for i, c in enumerate(classes) if not counts[i]]
    if empty:
        more = f" ({len(empty)} empty class folders)" if len(empty) > 1 else ""
        raise DataFileError(split / empty[0], f"class folder holds no images{more}")


@register_dataset(INFO)
def build_imagenet(root: Path | None, train: bool, tcfg: TransformConfig, seed: int) -> datasets.ImageFolder:
    """ImageFolder over ``root/train`` or ``root/val`` with the transforms of the module docstring."""
    split = root / ("train" if train else "val") if root is not None else None
    if split is None or not split.is_dir() or not any(p.is_dir() for p in split.iterdir()):
        raise DatasetNotFoundError(
            "ImageNet", root, f"{split or '<root>/train|val'}/<wnid>/*.JPEG (torchvision ImageFolder layout)"
        )
    transform = static_transform(
        tcfg,
        train,
        mean=INFO.mean,
        std=INFO.std,
        train_crop=(T.RandomResizedCrop(224), T.RandomHorizontalFlip()),
        test_crop=(T.Resize(256), T.CenterCrop(224)),
        autoaugment_policy=INFO.autoaugment_policy,
    )
    dataset = datasets.ImageFolder(str(split), transform=transform, loader=open_rgb, allow_empty=True)
    check_class_folders(split, dataset.classes, dataset.targets)
    return dataset
