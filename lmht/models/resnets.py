"""ResNet-18 / 19 / 20 / 34 with ReLU activations (the authors' models/ResNet.py and ann_models/ResNet.py).

Sources:
* He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (basic blocks, ResNet-18/34,
  and the CIFAR ResNet-20 of §4.2: three stages of widths 16/32/64 with [3, 3, 3] blocks, 0.27 M
  parameters; the QCFS hybrid papers — Bu et al., ICLR 2022 — and the LM-HT authors' ann_models use
  exactly this network, with PyTorch's default initialization).
* Zheng et al., "Going Deeper With Directly-Trained Larger Spiking Neural Networks", AAAI 2021 (tdBN)
  for ResNet-19, as the LM-HT authors build it (models/ResNet.py ``use_resnet19``): stem conv3×3 with
  **64** channels, stages 128/256/512 with [3, 3, 2] basic blocks (strides 1, 2, 2; the authors use
  2, 2, 2 on CIFAR10-DVS: ``strides=(2, 2, 2)``), global average pool, FC 512→256, ReLU, FC 256→classes.

Basic block (ReLU after the residual sum, as in He et al.)::

    out = ReLU2( BN2(conv2( ReLU1(BN1(conv1(x))) )) + shortcut(x) )
    shortcut = identity, or conv1×1 (stride s) + BN when the shape changes

Stems (``stem=``; ``"cifar"`` is the default of every ResNet here, so a depth series on CIFAR varies
only the depth — the authors switch to the ImageNet stem for ImageNet only):
* ``"cifar"``: conv3×3 stride 1 + BN + ReLU, no pooling: [B, C, H, W] -> [B, w, H, W].
* ``"imagenet"``: conv7×7 stride 2 + BN + ReLU, then a 3×3 stride-2 pool (padding 1):
  [B, C, 224, 224] -> [B, 64, 56, 56]. ``stem_pool="max"`` (default) is He et al.'s and the authors'
  max pool; ``stem_pool="avg"`` is our conversion-exact variant (the exact ANN→SNN conversion and the
  reparameterization need average pooling).

Shapes for ResNet-18 on [B, 3, 32, 32]: stem [B, 64, 32, 32] -> stages [B, 64, 32, 32],
[B, 128, 16, 16], [B, 256, 8, 8], [B, 512, 4, 4] -> global avg pool [B, 512] -> head [B, classes].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._factory import build, default_cfg, register
from .layers import Classifier, check_common_args, conv_bn, init_weights, make_pool

STEMS = ("cifar", "imagenet")
INITS = ("kaiming", "torch")


def make_stem(stem: str, in_chans: int, width: int, pool: str = "max", act: bool = True) -> nn.Sequential:
    """The stem named ``stem`` (module docstring): conv + BN [+ ReLU] [+ pool].

    ``act=False`` leaves out the ReLU (MS-ResNet). ``pool`` is the ImageNet stem's pooling kind.
    ValueError names the known stems / pooling kinds.
    """
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; known stems: {list(STEMS)}")
    kernel, stride = (3, 1) if stem == "cifar" else (7, 2)
    layers = [*conv_bn(in_chans, width, kernel, stride)]
    if act:
        layers.append(nn.ReLU())
    if stem == "imagenet":
        layers.append(make_pool(pool, 3, 2, padding=1))
    return nn.Sequential(*layers)


def check_stages(depths: Sequence[int], widths: Sequence[int], strides: Sequence[int]) -> None:
    """Raise ValueError unless ``depths``, ``widths``, ``strides`` are non-empty, equally long, positive."""
    if not depths or not len(depths) == len(widths) == len(strides) or min(*depths, *widths, *strides) < 1:
        raise ValueError(
            f"depths {tuple(depths)}, widths {tuple(widths)}, strides {tuple(strides)}: need "
            "equal-length positive lists"
        )


def stage_strides(depths: Sequence[int], strides: Sequence[int] | None) -> tuple[int, ...]:
    """``strides`` or the default (1, 2, 2, …): the first block of stage i has stride ``strides[i]``."""
    return tuple(strides) if strides is not None else (1,) + (2,) * (len(depths) - 1)


def shortcut(in_chans: int, out_chans: int, stride: int) -> nn.Module:
    """Identity, or conv1×1 (stride) + BN projection when the shape changes."""
    if stride == 1 and in_chans == out_chans:
        return nn.Identity()
    return conv_bn(in_chans, out_chans, kernel_size=1, stride=stride)


class BasicBlock(nn.Module):
    """Post-activation basic block: [B, in, H, W] -> [B, out, H/s, W/s] (formula in the module docstring)."""

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_bn(in_chans, out_chans, 3, stride)
        self.relu1 = nn.ReLU()
        self.conv2 = conv_bn(out_chans, out_chans, 3)
        self.shortcut = shortcut(in_chans, out_chans, stride)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu1(self.conv1(x)))
        return self.relu2(out + self.shortcut(x))


class ResNet(Classifier):
    """ResNet of basic blocks with ReLU.

    Args:
        depths: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
        widths: channels per stage, e.g. (64, 128, 256, 512).
        num_classes: classifier outputs.
        in_chans: input channels.
        stem: ``"cifar"`` or ``"imagenet"`` (see the module docstring).
        stem_pool: the ImageNet stem's pool, ``"max"`` (He et al., the authors) or ``"avg"``.
        stem_width: stem output channels (default: ``widths[0]``).
        hidden: width of a hidden FC layer (+ ReLU) before the classifier (ResNet-19: 256); 0 for none.
        strides: stride of each stage's first block (default 1, 2, 2, …).
        init: ``"kaiming"`` (the authors' models/ResNet.py: Kaiming-normal convs, BN 1/0, Linear
            layers at PyTorch's default) or ``"torch"`` (PyTorch's defaults everywhere: ann_models'
            ResNet-20).
    """

    def __init__(
        self,
        depths: Sequence[int],
        widths: Sequence[int],
        num_classes: int = 10,
        in_chans: int = 3,
        stem: str = "cifar",
        stem_pool: str = "max",
        stem_width: int | None = None,
        hidden: int = 0,
        strides: Sequence[int] | None = None,
        init: str = "kaiming",
    ) -> None:
        super().__init__()
        check_common_args(num_classes, in_chans)
        strides = stage_strides(depths, strides)
        check_stages(depths, widths, strides)
        if init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}, got {init!r}")
        self.num_classes, self.in_chans = num_classes, in_chans
        stem_width = stem_width or widths[0]
        self.stem = make_stem(stem, in_chans, stem_width, stem_pool)
        stages, chans = [], stem_width
        for depth, width, stride in zip(depths, widths, strides, strict=True):
            blocks = []
            for j in range(depth):
                blocks.append(BasicBlock(chans, width, stride=stride if j == 0 else 1))
                chans = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = chans
        if hidden:
            self.pre_logits = nn.Sequential(nn.Linear(chans, hidden), nn.ReLU())
            chans = hidden
        else:
            self.pre_logits = nn.Identity()
        self.head = nn.Linear(chans, num_classes)
        if init == "kaiming":
            init_weights(self, zero_linear_bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, H, W] -> pooled features [B, widths[-1]]."""
        return self.pool(self.stages(self.stem(x))).flatten(1)


default_cfgs = {f"lmht_resnet{d}": default_cfg() for d in (18, 19, 20, 34)}


@register(paper_name="ResNet-18", family="ResNet", depth=18)
def lmht_resnet18(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-18: stem conv3×3 64 (``stem="imagenet"`` for ImageNet), widths 64/128/256/512, blocks
    [2, 2, 2, 2]."""
    args = dict(depths=(2, 2, 2, 2), widths=(64, 128, 256, 512))
    return build(ResNet, "lmht_resnet18", pretrained, **{**args, **kwargs})


@register(paper_name="ResNet-19", family="ResNet", depth=19)
def lmht_resnet19(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-19 (tdBN, the authors' layout): stem conv3×3 64, widths 128/256/512, blocks [3, 3, 2],
    FC 512→256→classes."""
    args = dict(depths=(3, 3, 2), widths=(128, 256, 512), stem_width=64, hidden=256)
    return build(ResNet, "lmht_resnet19", pretrained, **{**args, **kwargs})


@register(paper_name="ResNet-20", family="ResNet", depth=20)
def lmht_resnet20(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """CIFAR ResNet-20 (He et al. §4.2, QCFS, ann_models): widths 16/32/64, blocks [3, 3, 3], PyTorch init."""
    args = dict(depths=(3, 3, 3), widths=(16, 32, 64), init="torch")
    return build(ResNet, "lmht_resnet20", pretrained, **{**args, **kwargs})


@register(paper_name="ResNet-34", family="ResNet", depth=34)
def lmht_resnet34(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-34: blocks [3, 4, 6, 3]; CIFAR stem by default, ``stem="imagenet"`` (conv7×7/2 + BN + ReLU +
    3×3/2 max pool) for ImageNet."""
    args = dict(depths=(3, 4, 6, 3), widths=(64, 128, 256, 512))
    return build(ResNet, "lmht_resnet34", pretrained, **{**args, **kwargs})
