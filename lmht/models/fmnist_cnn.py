"""A small CNN for Fashion-MNIST (1×28×28), sized for the CPU `quick` suite.

Not from the LM-HT paper: it is this project's stand-in architecture for runs that must finish on a
2-core CPU. Layout (shapes for a [B, 1, 28, 28] input, default widths 16/32, hidden 128)::

    stem      conv3×3 1→16 + BN + ReLU        [B, 16, 28, 28]
    pool1     avgpool 2                       [B, 16, 14, 14]
    conv2     conv3×3 16→32 + BN + ReLU       [B, 32, 14, 14]
    pool2     avgpool 2                       [B, 32, 7, 7]
    flatten                                   [B, 1568]
    fc1       linear 1568→128 + ReLU          [B, 128]
    head      linear 128→classes              [B, classes]

About 1.3 M multiply-accumulates per image and 0.21 M parameters, so an SNN epoch of 60 k images at
T = 2 takes on the order of a minute on two CPU cores.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._factory import build, default_cfg, register
from .layers import Classifier, check_common_args, conv_bn_relu, init_weights

FMNIST_MEAN = (0.2860,)
FMNIST_STD = (0.3530,)


class FMnistCNN(Classifier):
    """conv-BN-ReLU ×2 with average pooling, then a ReLU MLP head (see the module docstring).

    Args:
        num_classes: classifier outputs.
        in_chans: input channels (1 for Fashion-MNIST).
        widths: output channels of the two convolutions.
        hidden: width of the hidden fully connected layer.
        img_size: input height = width (28); it must be divisible by 4.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        widths: tuple[int, int] = (16, 32),
        hidden: int = 128,
        img_size: int = 28,
    ) -> None:
        super().__init__()
        check_common_args(num_classes, in_chans)
        if img_size % 4:
            raise ValueError(f"img_size must be divisible by 4 (two 2×2 average pools), got {img_size}")
        self.num_classes, self.in_chans = num_classes, in_chans
        c1, c2 = widths
        self.stem = conv_bn_relu(in_chans, c1)
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = conv_bn_relu(c1, c2)
        self.pool2 = nn.AvgPool2d(2)
        self.num_features = c2 * (img_size // 4) ** 2
        self.pre_logits = nn.Sequential(nn.Linear(self.num_features, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, 28, 28] -> [B, c2·7·7]."""
        x = self.pool1(self.stem(x))
        x = self.pool2(self.conv2(x))
        return x.flatten(1)


default_cfgs = {"lmht_fmnist_cnn": default_cfg((1, 28, 28), mean=FMNIST_MEAN, std=FMNIST_STD)}


@register
def lmht_fmnist_cnn(pretrained: bool = False, **kwargs: Any) -> FMnistCNN:
    """Fashion-MNIST CNN: conv16-AP2-conv32-AP2-FC128-FC (about 0.21 M parameters)."""
    return build(FMnistCNN, "lmht_fmnist_cnn", pretrained, **kwargs)
