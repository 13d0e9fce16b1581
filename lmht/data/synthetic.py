"""A deterministic, learnable toy dataset made in code (no files): class prototypes plus noise.

For class c a fixed smooth pattern P_c [C, H, W] is drawn once (a 4×4 Gaussian field upsampled
bilinearly to H×W, scaled to unit standard deviation) from ``pattern_seed``, so train and test
splits share the same classes. Sample i is::

    x_i = P_{y_i} + noise · ε_i,    ε_i ~ N(0, 1) per pixel,    y_i balanced over the classes

with labels and noise drawn from ``seed`` (train and test use different streams of it). With
``frames`` > 0 samples are event-like frame stacks [F, C, H, W]: each frame is the prototype plus its
own noise, with ``encoding="frames"`` in the info. Everything is generated up front as tensors, so
the same arguments always give bit-identical data (memory: ``length × F × C × H × W`` floats).

``like="<dataset>"`` takes the shape from that dataset's info — classes, channels, image size,
encoding and frames (``create_dataset("synthetic", like="cifar10_dvs")`` gives [10, 2, 48, 48] frame
stacks of 10 classes) — so any (architecture, dataset) pair can run without files; explicit
``num_classes`` / ``in_chans`` / ``image_size`` / ``frames`` options override it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .registry import DatasetInfo, dataset_info, register_dataset
from .transforms import TransformConfig

INFO = DatasetInfo(
    name="synthetic",
    num_classes=10,
    in_chans=3,
    image_size=32,
    default_augment=False,
    paper_name="synthetic",
    needs_files=False,
)


def synthetic_info(
    num_classes: int | None = None,
    in_chans: int | None = None,
    image_size: int | None = None,
    frames: int | None = None,
    like: str | None = None,
    **_: object,
) -> DatasetInfo:
    """Info of a synthetic dataset with these options (other options do not change it).

    Unset options come from ``like``'s info (module docstring), else 10 classes of [3, 32, 32] images.
    """
    if like == INFO.name:
        raise ValueError("synthetic like='synthetic': name a dataset with files, e.g. like='cifar10'")
    base = dataset_info(like) if like is not None else INFO
    num_classes = base.num_classes if num_classes is None else num_classes
    in_chans = base.in_chans if in_chans is None else in_chans
    image_size = base.image_size if image_size is None else image_size
    frames = (base.frames or 0) if frames is None else frames
    limits = (("num_classes", num_classes, 2), ("in_chans", in_chans, 1), ("image_size", image_size, 4))
    for name, value, low in limits:
        if value < low:
            raise ValueError(f"synthetic {name} must be >= {low}, got {value}")
    if frames < 0:
        raise ValueError(f"synthetic frames must be >= 0, got {frames}")
    return replace(
        INFO,
        num_classes=num_classes,
        in_chans=in_chans,
        image_size=image_size,
        encoding="frames" if frames else "direct",
        frames=frames or None,
        paper_name=f"synthetic ({base.paper_name or base.name})" if like is not None else INFO.paper_name,
    )


def class_prototypes(num_classes: int, in_chans: int, image_size: int, pattern_seed: int) -> torch.Tensor:
    """[classes, C, H, W] smooth unit-std patterns, a function of the arguments only."""
    gen = torch.Generator().manual_seed(pattern_seed)
    coarse = torch.randn(num_classes, in_chans, 4, 4, generator=gen)
    fine = F.interpolate(coarse, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return fine / fine.flatten(1).std(dim=1).view(-1, 1, 1, 1)


class SyntheticDataset(Dataset):
    """Tensor dataset of ``(x, label)``: x [C, H, W] (or [F, C, H, W]), built as in the module docstring."""

    def __init__(
        self,
        length: int,
        num_classes: int,
        in_chans: int,
        image_size: int,
        frames: int,
        noise: float,
        seed: int,
        train: bool,
        pattern_seed: int,
    ) -> None:
        if length < 1:
            raise ValueError(f"synthetic length must be >= 1, got {length}")
        if noise < 0:
            raise ValueError(f"synthetic noise must be >= 0, got {noise}")
        prototypes = class_prototypes(num_classes, in_chans, image_size, pattern_seed)
        gen = torch.Generator().manual_seed(2 * seed + (0 if train else 1) + 7919)
        labels = (torch.arange(length) % num_classes)[torch.randperm(length, generator=gen)]
        sample_shape = (frames, *prototypes.shape[1:]) if frames else prototypes.shape[1:]
        eps = torch.randn((length, *sample_shape), generator=gen)
        base = prototypes[labels].unsqueeze(1) if frames else prototypes[labels]
        self.data = base + noise * eps
        self.labels = labels
        self.targets = labels.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.data[index], self.targets[index]


@register_dataset(INFO, info_for=synthetic_info)
def build_synthetic(
    root: Path | None,
    train: bool,
    tcfg: TransformConfig,
    seed: int,
    num_classes: int | None = None,
    in_chans: int | None = None,
    image_size: int | None = None,
    frames: int | None = None,
    like: str | None = None,
    length: int | None = None,
    noise: float = 1.0,
    pattern_seed: int = 0,
) -> SyntheticDataset:
    """Synthetic split shaped like ``like`` (or by the explicit options); ``length`` defaults to 512
    (train) / 256 (test).

    ``root`` and the transform switches are ignored: the samples are already standardized tensors.
    """
    info = synthetic_info(num_classes, in_chans, image_size, frames, like)
    if length is None:
        length = 512 if train else 256
    return SyntheticDataset(
        length, info.num_classes, info.in_chans, info.image_size, info.frames or 0, noise, seed, train,
        pattern_seed,
    )  # fmt: skip
