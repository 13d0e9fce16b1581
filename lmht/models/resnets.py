"""ResNet-18 / 19 / 20 / 34 with ReLU activations and average pooling only.

Sources:
* He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (basic blocks, ResNet-18/34,
  and the CIFAR ResNet-20 of §4.2: three stages of widths 16/32/64 with [3, 3, 3] blocks, 0.27 M
  parameters; the QCFS hybrid papers — Bu et al., ICLR 2022 — use exactly this network).
* Zheng et al., "Going Deeper With Directly-Trained Larger Spiking Neural Networks", AAAI 2021 (tdBN)
  for ResNet-19: stem conv3×3 128, stages 128/256/512 with [3, 3, 2] basic blocks, global average
  pool, FC 512→256, ReLU, FC 256→classes.

Basic block (ReLU after the residual sum, as in He et al.)::

    out = ReLU2( BN2(conv2( ReLU1(BN1(conv1(x))) )) + shortcut(x) )
    shortcut = identity, or conv1×1 (stride s) + BN when the shape changes

Stems (``stem=`` argument):
* ``"cifar"``: conv3×3 stride 1 + BN + ReLU, no pooling (ResNet-18/19/20 default): [B, C, H, W] ->
  [B, w, H, W].
* ``"imagenet"``: conv7×7 stride 2 + BN + ReLU, then a 3×3 stride-2 **average** pool (padding 1) in
  place of He et al.'s max pool, which the exact ANN→SNN conversion cannot represent (ResNet-34
  default): [B, C, 224, 224] -> [B, 64, 56, 56].

Shapes for ResNet-18 on [B, 3, 32, 32]: stem [B, 64, 32, 32] -> stages [B, 64, 32, 32],
[B, 128, 16, 16], [B, 256, 8, 8], [B, 512, 4, 4] -> global avg pool [B, 512] -> head [B, classes].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ._factory import IMAGENET_MEAN, IMAGENET_STD, build, default_cfg, register
from .layers import Classifier, check_common_args, conv_bn, init_weights


def cifar_stem(in_chans: int, width: int) -> nn.Sequential:
    """conv3×3 stride 1 + BN + ReLU: [B, in_chans, H, W] -> [B, width, H, W]."""
    return nn.Sequential(*conv_bn(in_chans, width, 3), nn.ReLU())


def imagenet_stem(in_chans: int, width: int) -> nn.Sequential:
    """conv7×7 stride 2 + BN + ReLU + avgpool 3×3 stride 2: [B, in_chans, H, W] -> [B, width, H/4, W/4]."""
    return nn.Sequential(*conv_bn(in_chans, width, 7, stride=2), nn.ReLU(), nn.AvgPool2d(3, 2, padding=1))


STEMS: dict[str, Callable[[int, int], nn.Sequential]] = {"cifar": cifar_stem, "imagenet": imagenet_stem}


def make_stem(stem: str, in_chans: int, width: int) -> nn.Sequential:
    """Look a stem up in :data:`STEMS` by name; ValueError names the known stems."""
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; known stems: {sorted(STEMS)}")
    return STEMS[stem](in_chans, width)


def check_stages(depths: Sequence[int], widths: Sequence[int]) -> None:
    """Raise ValueError unless ``depths`` and ``widths`` are non-empty, equally long and positive."""
    if not depths or len(depths) != len(widths) or min(*depths, *widths) < 1:
        raise ValueError(
            f"depths {tuple(depths)} and widths {tuple(widths)}: need equal-length positive lists"
        )


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
    """ResNet of basic blocks with ReLU and average pooling.

    Args:
        depths: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
        widths: channels per stage, e.g. (64, 128, 256, 512); stage i > 0 starts with stride 2.
        num_classes: classifier outputs.
        in_chans: input channels.
        stem: ``"cifar"`` or ``"imagenet"`` (see the module docstring).
        stem_width: stem output channels (default: ``widths[0]``).
        hidden: width of a hidden FC layer (+ ReLU) before the classifier (ResNet-19: 256); 0 for none.
    """

    def __init__(
        self,
        depths: Sequence[int],
        widths: Sequence[int],
        num_classes: int = 10,
        in_chans: int = 3,
        stem: str = "cifar",
        stem_width: int | None = None,
        hidden: int = 0,
    ) -> None:
        super().__init__()
        check_common_args(num_classes, in_chans)
        check_stages(depths, widths)
        self.num_classes, self.in_chans = num_classes, in_chans
        stem_width = stem_width or widths[0]
        self.stem = make_stem(stem, in_chans, stem_width)
        stages, chans = [], stem_width
        for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
            blocks = []
            for j in range(depth):
                blocks.append(BasicBlock(chans, width, stride=2 if (i > 0 and j == 0) else 1))
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
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, H, W] -> pooled features [B, widths[-1]]."""
        return self.pool(self.stages(self.stem(x))).flatten(1)


IMAGENET_CFG = dict(input_size=(3, 224, 224), num_classes=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD)
default_cfgs = {
    "lmht_resnet18": default_cfg(),
    "lmht_resnet19": default_cfg(),
    "lmht_resnet20": default_cfg(),
    "lmht_resnet34": default_cfg(**IMAGENET_CFG),
}


@register
def lmht_resnet18(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-18, CIFAR stem (conv3×3 stride 1, no pool), widths 64/128/256/512, blocks [2, 2, 2, 2]."""
    args = dict(depths=(2, 2, 2, 2), widths=(64, 128, 256, 512), stem="cifar")
    return build(ResNet, "lmht_resnet18", pretrained, **{**args, **kwargs})


@register
def lmht_resnet19(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-19 (tdBN): stem conv3×3 128, widths 128/256/512, blocks [3, 3, 2], FC 512→256→classes."""
    args = dict(depths=(3, 3, 2), widths=(128, 256, 512), stem="cifar", hidden=256)
    return build(ResNet, "lmht_resnet19", pretrained, **{**args, **kwargs})


@register
def lmht_resnet20(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """CIFAR ResNet-20 (He et al. §4.2, QCFS): widths 16/32/64, blocks [3, 3, 3], 0.27 M parameters."""
    args = dict(depths=(3, 3, 3), widths=(16, 32, 64), stem="cifar")
    return build(ResNet, "lmht_resnet20", pretrained, **{**args, **kwargs})


@register
def lmht_resnet34(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """ResNet-34, ImageNet stem (conv7×7/2 + BN + ReLU + 3×3/2 average pool), blocks [3, 4, 6, 3]."""
    args = dict(depths=(3, 4, 6, 3), widths=(64, 128, 256, 512), stem="imagenet")
    return build(ResNet, "lmht_resnet34", pretrained, **{**args, **kwargs})
