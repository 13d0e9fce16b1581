"""VGG-11 / 13 / 16 with batch norm, ReLU and average pooling.

Source: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015 (configurations A, B, D), with BN after every convolution and 2×2 average pooling in place
of max pooling, as in the QCFS / LM-HT code for CIFAR and Tiny-ImageNet.

Layout (shapes for [B, 3, 32, 32]; 64×64 Tiny-ImageNet and 224×224 ImageNet inputs work too)::

    stem        conv3×3 in→64 + BN + ReLU                     [B, 64, 32, 32]
    features    the remaining conv-BN-ReLU of the config, an avgpool 2 after each of the 5 groups
                                                              [B, 512, 1, 1]  (2×2 at 64×64, 7×7 at 224×224)
    pool        adaptive avgpool to 1×1, flatten              [B, 512]
    pre_logits  (Dropout, linear 512→hidden, ReLU) × 2        [B, hidden]     (hidden=4096 by default)
    head        linear hidden→classes                         [B, classes]

``hidden=4096`` follows the QCFS hybrid VGG-16 (512-4096-4096-classes); ``hidden=0`` gives the light
512→classes classifier. Parameters: VGG-16 ≈ 33.6 M with hidden 4096, ≈ 14.7 M with hidden 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._factory import build, default_cfg, register
from .layers import Classifier, check_common_args, conv_bn_relu, init_weights

# Output channels of each convolution, grouped by the average pool that ends the group.
CONFIGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
}


class VGG(Classifier):
    """VGG with BN and average pooling (see the module docstring).

    Args:
        groups: channels of each convolution grouped by pooling stage (an entry of :data:`CONFIGS`).
        num_classes: classifier outputs.
        in_chans: input channels.
        hidden: width of the two hidden FC layers; 0 for a single linear classifier.
        drop_rate: dropout probability before each hidden FC layer.
    """

    def __init__(
        self,
        groups: Sequence[Sequence[int]],
        num_classes: int = 10,
        in_chans: int = 3,
        hidden: int = 4096,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        check_common_args(num_classes, in_chans)
        if hidden < 0:
            raise ValueError(f"hidden must be >= 0, got {hidden}")
        self.num_classes, self.in_chans = num_classes, in_chans
        chans = [c for group in groups for c in group]
        self.stem = conv_bn_relu(in_chans, chans[0])
        layers: list[nn.Module] = []
        prev, first = chans[0], True
        for group in groups:
            for c in group:
                if not first:
                    layers.append(conv_bn_relu(prev, c))
                first, prev = False, c
            layers.append(nn.AvgPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = prev
        if hidden:
            self.pre_logits = nn.Sequential(
                nn.Dropout(drop_rate), nn.Linear(prev, hidden), nn.ReLU(),
                nn.Dropout(drop_rate), nn.Linear(hidden, hidden), nn.ReLU(),
            )  # fmt: skip
            prev = hidden
        else:
            self.pre_logits = nn.Identity()
        self.head = nn.Linear(prev, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, H, W] -> [B, 512] (H, W multiples of 32 keep every pool exact)."""
        return self.pool(self.features(self.stem(x))).flatten(1)


default_cfgs = {f"lmht_{name}": default_cfg() for name in CONFIGS}


def _vgg(name: str, pretrained: bool, kwargs: dict[str, Any]) -> VGG:
    return build(VGG, f"lmht_{name}", pretrained, **{"groups": CONFIGS[name], **kwargs})


@register
def lmht_vgg11(pretrained: bool = False, **kwargs: Any) -> VGG:
    """VGG-11 (config A) with BN, average pooling, classifier 512-4096-4096-classes."""
    return _vgg("vgg11", pretrained, kwargs)


@register
def lmht_vgg13(pretrained: bool = False, **kwargs: Any) -> VGG:
    """VGG-13 (config B) with BN, average pooling, classifier 512-4096-4096-classes."""
    return _vgg("vgg13", pretrained, kwargs)


@register
def lmht_vgg16(pretrained: bool = False, **kwargs: Any) -> VGG:
    """VGG-16 (config D) with BN, average pooling, classifier 512-4096-4096-classes."""
    return _vgg("vgg16", pretrained, kwargs)
