"""Model registry: timm registration plus the project's `create_model` / `list_models` / `model_info`.

Every architecture module defines an entry point decorated with :func:`register`, which registers it
with timm (``timm.create_model("lmht_resnet19", num_classes=100)`` works) and records its metadata
(:class:`ModelInfo`: the paper's name, the family and the depth) in the project's own registry, so
:func:`list_models` returns exactly the ``lmht_*`` architectures and :func:`model_info` answers
without building a model. To add an architecture, write one entry point::

    @register(paper_name="ResNet-19", family="ResNet", depth=19)
    def lmht_resnet19(pretrained: bool = False, **kwargs) -> ResNet:
        return build(ResNet, "lmht_resnet19", pretrained, **{**defaults, **kwargs})

``depth`` counts weight layers (conv + linear) on the main path, shortcut projections excluded —
the usual convention behind "ResNet-18" or "VGG-16"; a Transformer's depth is its number of blocks.

Entry points build their model with :func:`build`, which follows timm's conventions
(``timm.models.build_model_with_cfg``: the model gets ``pretrained_cfg`` with its input size, mean and
std, and ``num_classes`` / ``in_chans`` default to that cfg) and refuses ``pretrained=True``: no
pretrained weights exist for these ANN-for-SNN architectures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import timm
from timm.models import build_model_with_cfg, register_model
from torch import nn

PREFIX = "lmht_"


@dataclass(frozen=True)
class ModelInfo:
    """Static facts about a registered architecture (readable without building it).

    Attributes:
        name: registry name with the ``lmht_`` prefix, e.g. ``"lmht_resnet19"``.
        paper_name: the name tables print, e.g. ``"ResNet-19"`` (the LM-HT paper's spelling where the
            paper uses the network).
        family: architecture family for depth series, e.g. ``"ResNet"``, ``"VGG"``.
        depth: weight layers on the main path (see the module docstring); blocks for Transformers.
    """

    name: str
    paper_name: str
    family: str
    depth: int


_REGISTERED: dict[str, ModelInfo] = {}

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)  # the authors' dataprocess.py (lmht.data.cifar)
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


def register(
    *, paper_name: str, family: str, depth: int
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register an entry point with timm and in the project registry with its metadata.

    The entry point's ``__name__`` must start with ``lmht_``; ``depth`` must be >= 1.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if not fn.__name__.startswith(PREFIX):
            raise ValueError(f"model entry point {fn.__name__!r} must be named {PREFIX}<arch>")
        register_model(fn)
        _REGISTERED[fn.__name__] = ModelInfo(fn.__name__, paper_name, family, depth)
        return fn

    return deco


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


def _full_name(name: str) -> str:
    full = name if name.startswith(PREFIX) else PREFIX + name
    if full not in _REGISTERED:
        known = ", ".join(n[len(PREFIX) :] for n in list_models())
        raise ValueError(f"unknown model name {name!r}; known models (lmht_ prefix optional): {known}")
    return full


def model_info(name: str) -> ModelInfo:
    """:class:`ModelInfo` of a registered architecture, with or without the ``lmht_`` prefix.

    Raises:
        ValueError: unknown ``name`` (the message lists the known names).
    """
    return _REGISTERED[_full_name(name)]


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
    return timm.create_model(_full_name(name), num_classes=num_classes, in_chans=in_chans, **kwargs)
