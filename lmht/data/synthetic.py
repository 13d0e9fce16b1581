"""A deterministic, learnable toy dataset made in code (no files): class prototypes plus noise.

For class c a fixed smooth pattern P_c [C, H, W] is drawn once (a 4×4 Gaussian field upsampled
bilinearly to H×W, scaled to unit standard deviation) from ``pattern_seed``, so train and test
splits share the same classes. Sample i is::

    x_i = P_{y_i} + noise · ε_i,    ε_i ~ N(0, 1) per pixel,    y_i balanced over the classes

with labels and noise drawn from ``seed`` (train and test use different streams of it). With
``frames`` > 0 samples are event-like frame stacks [F, C, H, W]: each frame is the prototype plus its
own noise, with ``encoding="frames"`` in the info. Everything is generated up front as tensors, so
the same arguments always give bit-identical data.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .registry import DatasetInfo, register_dataset
from .transforms import TransformConfig

INFO = DatasetInfo(name="synthetic", num_classes=10, in_chans=3, image_size=32, default_augment=False)


def synthetic_info(
    num_classes: int = 10, in_chans: int = 3, image_size: int = 32, frames: int = 0, **_: object
) -> DatasetInfo:
    """Info of a synthetic dataset with these options (other options do not change it)."""
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
    num_classes: int = 10,
    in_chans: int = 3,
    image_size: int = 32,
    frames: int = 0,
    length: int | None = None,
    noise: float = 1.0,
    pattern_seed: int = 0,
) -> SyntheticDataset:
    """Synthetic split; ``length`` defaults to 512 (train) / 256 (test).

    ``root`` and the transform switches are ignored: the samples are already standardized tensors.
    """
    synthetic_info(num_classes, in_chans, image_size, frames)
    if length is None:
        length = 512 if train else 256
    return SyntheticDataset(
        length, num_classes, in_chans, image_size, frames, noise, seed, train, pattern_seed
    )
