"""Mixup / CutMix through timm (``timm.data.Mixup``), also for event frames [B, F, C, H, W].

Paper setting (ImageNet-1k, optional elsewhere): Mixup α = 0.8, CutMix α = 1.0, label smoothing 0.1.
The returned callable maps ``(x, target)`` with integer targets [B] to mixed inputs and soft targets
[B, classes] (use a soft-target cross-entropy). timm draws λ and the box from NumPy's global
generator: seed NumPy (the engine does) for reproducible mixing. The batch size must be even
(use ``drop_last=True`` for the training loader).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from timm.data import Mixup


class FrameMixup(Mixup):
    """timm Mixup that also accepts frame batches [B, F, C, H, W] (one λ / box for all frames)."""

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(x) % 2:
            raise ValueError(f"Mixup/CutMix needs an even batch size, got {len(x)} (use drop_last=True)")
        if x.ndim == 5:
            b, f, c, h, w = x.shape
            folded, target = super().__call__(x.reshape(b, f * c, h, w), target)
            return folded.reshape(b, f, c, h, w), target
        return super().__call__(x, target)


def _get(cfg: Mapping[str, Any] | Any, key: str, default: float) -> float:
    value = cfg.get(key, default) if isinstance(cfg, Mapping) else getattr(cfg, key, default)
    return float(default if value is None else value)


def create_mixup(cfg: Mapping[str, Any] | Any, num_classes: int) -> FrameMixup | None:
    """Mixup/CutMix from a config (mapping or object) with keys ``mixup``, ``cutmix``, ``label_smoothing``.

    ``mixup`` and ``cutmix`` are the Beta-distribution α of each (0 disables it); when both are 0 the
    result is None and training uses hard labels. When both are on, timm switches between them with
    probability 0.5 per batch.
    """
    mixup, cutmix = _get(cfg, "mixup", 0.0), _get(cfg, "cutmix", 0.0)
    smoothing = _get(cfg, "label_smoothing", 0.0)
    if mixup < 0 or cutmix < 0:
        raise ValueError(f"mixup and cutmix alphas must be >= 0, got mixup={mixup}, cutmix={cutmix}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {smoothing}")
    if mixup == 0 and cutmix == 0:
        return None
    return FrameMixup(
        mixup_alpha=mixup, cutmix_alpha=cutmix, label_smoothing=smoothing, num_classes=num_classes
    )
