"""Model registry: timm registration plus the project's `create_model` / `list_models`.

Every architecture module defines an entry point decorated with :func:`register`, which registers it
with timm (``timm.create_model("lmht_resnet19", num_classes=100)`` works) and records the name in the
project's own list, so :func:`list_models` returns exactly the ``lmht_*`` architectures.

Entry points build their model with :func:`build`, which follows timm's conventions
(``timm.models.build_model_with_cfg``: the model gets ``pretrained_cfg`` with its input size, mean and
std, and ``num_classes`` / ``in_chans`` default to that cfg) and refuses ``pretrained=True``: no
pretrained weights exist for these ANN-for-SNN architectures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import timm
from timm.models import build_model_with_cfg, register_model
from torch import nn

PREFIX = "lmht_"
_REGISTERED: list[str] = []

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_cfg(
    input_size: tuple[int, int, int] = (3, 32, 32),
    num_classes: int = 10,
    mean: tuple[float, ...] = CIFAR_MEAN,
    std: tuple[float, ...] = CIFAR_STD,
    first_conv: str = "stem.0",
    **kwargs: Any,
) -> dict[str, Any]:
    """A timm pretrained-cfg dict without weights (no url / hub id): only input and head metadata."""
    return dict(
        input_size=input_size,
        num_classes=num_classes,
        mean=mean,
        std=std,
        crop_pct=1.0,
        interpolation="bilinear",
        first_conv=first_conv,
        classifier="head",
        **kwargs,
    )


def register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register an entry point with timm and in the project list (its ``__name__`` must start with lmht_)."""
    if not fn.__name__.startswith(PREFIX):
        raise ValueError(f"model entry point {fn.__name__!r} must be named {PREFIX}<arch>")
    register_model(fn)
    if fn.__name__ not in _REGISTERED:
        _REGISTERED.append(fn.__name__)
    return fn


def build(
    model_cls: Callable[..., nn.Module], variant: str, pretrained: bool = False, **kwargs: Any
) -> nn.Module:
    """Build ``model_cls(**kwargs)`` through timm's ``build_model_with_cfg``; ``pretrained=True`` raises.

    timm passes ``pretrained_cfg``, ``pretrained_cfg_overlay`` and ``cache_dir`` to entry points; they
    are consumed here and never reach the model constructor.
    """
    if pretrained:
        raise ValueError(
            f"pretrained=True: no pretrained weights exist for {variant}; train it with the lmht CLI "
            "(lmht ann ...) and load the checkpoint instead"
        )
    return build_model_with_cfg(model_cls, variant, pretrained=False, **kwargs)


def list_models() -> list[str]:
    """Names of every registered lmht architecture (with the ``lmht_`` prefix), sorted."""
    return sorted(_REGISTERED)


def create_model(name: str, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """Create a registered architecture by name, with or without the ``lmht_`` prefix.

    Args:
        name: e.g. ``"resnet19"`` or ``"lmht_resnet19"``.
        num_classes: size of the classifier output ``[B, num_classes]``.
        in_chans: input channels (1 for Fashion-MNIST, 2 for CIFAR10-DVS frames, 3 for RGB).
        **kwargs: architecture options, passed through ``timm.create_model`` to the constructor.

    Raises:
        ValueError: unknown ``name`` (the message lists the known names).
    """
    full = name if name.startswith(PREFIX) else PREFIX + name
    if full not in _REGISTERED:
        known = ", ".join(n[len(PREFIX) :] for n in list_models())
        raise ValueError(f"unknown model name {name!r}; known models (lmht_ prefix optional): {known}")
    return timm.create_model(full, num_classes=num_classes, in_chans=in_chans, **kwargs)
