"""ImageNet-200 = Tiny-ImageNet (Stanford CS231n): 200 classes, 100 000 train / 10 000 val 64×64 images.

Layout (as unpacked from ``tiny-imagenet-200.zip``)::

    root/wnids.txt                          (optional; the classes are the sorted train folders)
    root/train/<wnid>/images/*.JPEG         500 per class
    root/val/images/*.JPEG                  10 000 images
    root/val/val_annotations.txt            "<file>\t<wnid>\t<x0>\t<y0>\t<x1>\t<y1>" per line

A ``val`` already sorted into ``root/val/<wnid>/images/*.JPEG`` (or ``root/val/<wnid>/*.JPEG``)
is read too. The unlabeled ``test`` split is not used: the paper reports validation accuracy.
Samples are ``(x, label)`` with ``x`` [3, 64, 64]; training RandomResizedCrop(64) + flip (optional
AutoAugment IMAGENET policy, Cutout), test Resize(64) + CenterCrop(64) (the authors' dataprocess.py).

Errors, each naming the path: missing folders (:class:`DatasetNotFoundError` with the layout above), a
class folder without images, a missing, unreadable or malformed ``val_annotations.txt`` (the line
number is given), a validation image without an annotation, and an image that fails to decode when
it is loaded (:class:`DataFileError`).
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset
from torchvision import transforms as T

from .errors import DataFileError, DatasetNotFoundError
from .imagenet import open_rgb
from .registry import DatasetInfo, register_dataset
from .transforms import TransformConfig, static_transform

INFO = DatasetInfo(
    name="imagenet200",
    num_classes=200,
    in_chans=3,
    image_size=64,
    mean=(0.480, 0.448, 0.398),  # the authors' dataprocess.py
    std=(0.272, 0.266, 0.274),
    autoaugment_policy="imagenet",
    paper_name="ImageNet-200",
)
LAYOUT = "root/train/<wnid>/images/*.JPEG and root/val/images/*.JPEG + root/val/val_annotations.txt"
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}


def _images(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _class_images(class_dir: Path) -> list[Path]:
    images_dir = class_dir / "images"
    folder = images_dir if images_dir.is_dir() else class_dir
    images = _images(folder)
    if not images:
        raise DataFileError(folder, f"class folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def read_val_annotations(path: Path) -> dict[str, str]:
    """``val_annotations.txt`` -> {image file name: wnid}; DataFileError naming the file (and line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(path, f"cannot be read as text ({type(exc).__name__}: {exc})") from exc
    mapping = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
            raise DataFileError(path, f"line {lineno}: expected '<file>\\t<wnid>\\t...', got {line[:80]!r}")
        mapping[fields[0]] = fields[1]
    if not mapping:
        raise DataFileError(path, "holds no annotation lines")
    return mapping


def tiny_imagenet_samples(root: Path, train: bool) -> tuple[list[str], list[tuple[Path, int]]]:
    """(classes, [(image path, label)]) for a split, following the layout in the module docstring."""
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DatasetNotFoundError("Tiny-ImageNet (imagenet200)", root, LAYOUT)
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    if not classes:
        raise DatasetNotFoundError("Tiny-ImageNet (imagenet200)", root, f"class folders in {train_dir}")
    index = {c: i for i, c in enumerate(classes)}
    if train:
        return classes, [(p, index[c]) for c in classes for p in _class_images(train_dir / c)]
    val_dir = root / "val"
    annotations = val_dir / "val_annotations.txt"
    if (val_dir / "images").is_dir():
        if not annotations.is_file():
            raise DatasetNotFoundError(
                "Tiny-ImageNet (imagenet200) validation labels", root, f"{annotations} (labels of val/images)"
            )
        mapping = read_val_annotations(annotations)
        unknown = sorted({w for w in mapping.values() if w not in index})
        if unknown:
            raise DataFileError(annotations, f"names wnids without a train folder: {unknown[:5]}")
        samples = []
        for p in _images(val_dir / "images"):
            if p.name not in mapping:
                raise DataFileError(p, f"validation image has no line in {annotations}")
            samples.append((p, index[mapping[p.name]]))
        if not samples:
            raise DataFileError(val_dir / "images", "holds no images")
        return classes, samples
    if val_dir.is_dir() and all((val_dir / c).is_dir() for c in classes):
        return classes, [(p, index[c]) for c in classes for p in _class_images(val_dir / c)]
    raise DatasetNotFoundError("Tiny-ImageNet (imagenet200) validation split", root, LAYOUT)


class TinyImageNet(Dataset):
    """Tiny-ImageNet split: ``(transform(RGB PIL image), label)``; ``classes`` (wnids), ``targets``."""

    def __init__(self, root: Path, train: bool, transform=None) -> None:
        self.root, self.train, self.transform = root, train, transform
        self.classes, self.samples = tiny_imagenet_samples(root, train)
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        img = open_rgb(path)
        return (self.transform(img) if self.transform else img), label


@register_dataset(INFO)
def build_imagenet200(root: Path | None, train: bool, tcfg: TransformConfig, seed: int) -> TinyImageNet:
    """Tiny-ImageNet with RandomResizedCrop(64) + flip training augmentation (the authors')."""
    if root is None:
        raise DatasetNotFoundError("Tiny-ImageNet (imagenet200)", root, LAYOUT)
    transform = static_transform(
        tcfg,
        train,
        mean=INFO.mean,
        std=INFO.std,
        train_crop=(T.RandomResizedCrop(64), T.RandomHorizontalFlip()),
        test_crop=(T.Resize(64), T.CenterCrop(64)),
        autoaugment_policy=INFO.autoaugment_policy,
    )
    return TinyImageNet(root, train, transform)
