"""Small CNNs for Fashion-MNIST (1×28×28), sized for the CPU `quick` suite, in a depth series.

Not from the LM-HT paper: this project's stand-in architecture for runs that must finish on a 2-core
CPU. Two stages of ``blocks[i]`` conv-BN-ReLU layers, each stage ending with a 2×2 average pool,
then a ReLU MLP head. Layout for the default ``blocks=(1, 1)`` (shapes for [B, 1, 28, 28], widths
16/32, hidden 128)::

    stem      conv3×3 1→16 + BN + ReLU        [B, 16, 28, 28]
    pool1     avgpool 2                       [B, 16, 14, 14]
    conv2     conv3×3 16→32 + BN + ReLU       [B, 32, 14, 14]
    pool2     avgpool 2                       [B, 32, 7, 7]
    flatten                                   [B, 1568]
    fc1       linear 1568→128 + ReLU          [B, 128]
    head      linear 128→classes              [B, classes]

Depth (weight layers) = ``sum(blocks) + 2``. Registered depth series (one family, "FMNIST-CNN"):

    =====================  ===========  ======  =================================
    entry point            blocks       depth   MACs per image (parameters)
    =====================  ===========  ======  =================================
    lmht_fmnist_cnn        (1, 1)       4       1.2 M  (0.21 M)   the quick suite's CNN
    lmht_fmnist_cnn_d4     (1, 1)       4       the same network, named for the series
    lmht_fmnist_cnn_d6     (2, 2)       6       4.8 M  (0.22 M)
    lmht_fmnist_cnn_d8     (3, 3)       8       8.4 M  (0.23 M)
    =====================  ===========  ======  =================================

The extra convolutions keep the stage's width and resolution (16 channels at 28×28, 32 at 14×14).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._factory import build, default_cfg, register
from .layers import Classifier, check_common_args, conv_bn_relu, init_weights

FMNIST_MEAN = (0.2860,)
FMNIST_STD = (0.3530,)


class FMnistCNN(Classifier):
    """Two stages of conv-BN-ReLU with average pooling, then a ReLU MLP head (module docstring).

    Args:
        num_classes: classifier outputs.
        in_chans: input channels (1 for Fashion-MNIST).
        widths: output channels of the two stages.
        hidden: width of the hidden fully connected layer.
        img_size: input height = width (28); it must be divisible by 4.
        blocks: conv-BN-ReLU layers per stage (each >= 1).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        widths: tuple[int, int] = (16, 32),
        hidden: int = 128,
        img_size: int = 28,
        blocks: Sequence[int] = (1, 1),
    ) -> None:
        super().__init__()
        check_common_args(num_classes, in_chans)
        if img_size % 4:
            raise ValueError(f"img_size must be divisible by 4 (two 2×2 average pools), got {img_size}")
        if len(blocks) != 2 or min(blocks) < 1 or len(widths) != 2:
            raise ValueError(f"blocks and widths need two entries each, blocks >= 1: got {blocks}, {widths}")
        self.num_classes, self.in_chans = num_classes, in_chans
        c1, c2 = widths
        self.stem = conv_bn_relu(in_chans, c1)
        self.stage1 = nn.Sequential(*(conv_bn_relu(c1, c1) for _ in range(blocks[0] - 1)))
        self.pool1 = nn.AvgPool2d(2)
        extra2 = (conv_bn_relu(c2, c2) for _ in range(blocks[1] - 1))
        self.stage2 = nn.Sequential(conv_bn_relu(c1, c2), *extra2)
        self.pool2 = nn.AvgPool2d(2)
        self.num_features = c2 * (img_size // 4) ** 2
        self.pre_logits = nn.Sequential(nn.Linear(self.num_features, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, 28, 28] -> [B, c2·7·7]."""
        x = self.pool1(self.stage1(self.stem(x)))
        x = self.pool2(self.stage2(x))
        return x.flatten(1)


_CFG = default_cfg((1, 28, 28), mean=FMNIST_MEAN, std=FMNIST_STD)
default_cfgs = {name: _CFG for name in ("lmht_fmnist_cnn", "lmht_fmnist_cnn_d4", "lmht_fmnist_cnn_d6",
                                        "lmht_fmnist_cnn_d8")}


def _cnn(name: str, blocks: tuple[int, int], pretrained: bool, kwargs: dict[str, Any]) -> FMnistCNN:
    return build(FMnistCNN, name, pretrained, **{"blocks": blocks, **kwargs})


@register(paper_name="FMNIST-CNN-4", family="FMNIST-CNN", depth=4)
def lmht_fmnist_cnn(pretrained: bool = False, **kwargs: Any) -> FMnistCNN:
    """Fashion-MNIST CNN: conv16-AP2-conv32-AP2-FC128-FC (about 0.21 M parameters)."""
    return _cnn("lmht_fmnist_cnn", (1, 1), pretrained, kwargs)


@register(paper_name="FMNIST-CNN-4", family="FMNIST-CNN", depth=4)
def lmht_fmnist_cnn_d4(pretrained: bool = False, **kwargs: Any) -> FMnistCNN:
    """The depth-4 member of the Fashion-MNIST depth series (the same network as lmht_fmnist_cnn)."""
    return _cnn("lmht_fmnist_cnn_d4", (1, 1), pretrained, kwargs)


@register(paper_name="FMNIST-CNN-6", family="FMNIST-CNN", depth=6)
def lmht_fmnist_cnn_d6(pretrained: bool = False, **kwargs: Any) -> FMnistCNN:
    """Fashion-MNIST CNN of depth 6: two conv layers per stage."""
    return _cnn("lmht_fmnist_cnn_d6", (2, 2), pretrained, kwargs)


@register(paper_name="FMNIST-CNN-8", family="FMNIST-CNN", depth=8)
def lmht_fmnist_cnn_d8(pretrained: bool = False, **kwargs: Any) -> FMnistCNN:
    """Fashion-MNIST CNN of depth 8: three conv layers per stage."""
    return _cnn("lmht_fmnist_cnn_d8", (3, 3), pretrained, kwargs)
