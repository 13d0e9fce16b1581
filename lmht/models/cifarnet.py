"""CIFARNet, the 5-conv / 3-FC network of directly trained SNN papers, as the LM-HT authors build it
(models/VGG.py, configuration ``'CIFARNet'``).

Source: Wu et al., "Direct Training for Spiking Neural Networks: Faster, Larger, Better", AAAI 2019
(CIFARNet: 128C3-256C3-AP2-512C3-AP2-1024C3-512C3-1024FC-512FC-Voting). Layout, for a
[B, 3, 32, 32] input::

    stem    conv3×3 3→128 + BN + ReLU          [B, 128, 32, 32]
    conv2   conv3×3 128→256 + BN + ReLU        [B, 256, 32, 32]
    pool    avgpool 2                          [B, 256, 16, 16]
    conv3   conv3×3 256→512 + BN + ReLU        [B, 512, 16, 16]
    pool    avgpool 2                          [B, 512, 8, 8]
    conv4   conv3×3 512→1024 + BN + ReLU       [B, 1024, 8, 8]
    conv5   conv3×3 1024→512 + BN + ReLU       [B, 512, 8, 8]
    pool    adaptive avgpool to 8×8            [B, 512, 8, 8]   (identity at 32×32; any input size works)
    fc1     linear 32768→1024 + ReLU           [B, 1024]
    fc2     linear 1024→512 + ReLU             [B, 512]
    head    linear 512→classes                 [B, classes]

As in the authors' file: convolutions with a bias, BN after every convolution, average pooling, a
plain linear head instead of Wu et al.'s voting layer, and Dropout (``drop_rate``, 0 in their runs)
after every ReLU. About 45 M parameters, mostly in fc1; 8 weight layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._factory import build, default_cfg, register
from .layers import Classifier, check_common_args, conv_bn_relu, dropout, init_weights


class CIFARNet(Classifier):
    """CIFARNet (see the module docstring for the layer table).

    Args:
        num_classes: classifier outputs.
        in_chans: input channels.
        drop_rate: dropout probability after every ReLU (0 disables it).
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0) -> None:
        super().__init__()
        check_common_args(num_classes, in_chans)
        self.num_classes, self.in_chans = num_classes, in_chans
        self.stem = conv_bn_relu(in_chans, 128, bias=True)
        self.features = nn.Sequential(
            *dropout(drop_rate),
            conv_bn_relu(128, 256, bias=True),
            *dropout(drop_rate),
            nn.AvgPool2d(2),
            conv_bn_relu(256, 512, bias=True),
            *dropout(drop_rate),
            nn.AvgPool2d(2),
            conv_bn_relu(512, 1024, bias=True),
            *dropout(drop_rate),
            conv_bn_relu(1024, 512, bias=True),
            *dropout(drop_rate),
            nn.AdaptiveAvgPool2d((8, 8)),
        )
        self.num_features = 512 * 8 * 8
        self.pre_logits = nn.Sequential(
            nn.Linear(self.num_features, 1024), nn.ReLU(), *dropout(drop_rate),
            nn.Linear(1024, 512), nn.ReLU(), *dropout(drop_rate),
        )  # fmt: skip
        self.head = nn.Linear(512, num_classes)
        init_weights(self, zero_linear_bias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, H, W] -> [B, 32768]."""
        return self.features(self.stem(x)).flatten(1)


default_cfgs = {"lmht_cifarnet": default_cfg()}


@register(paper_name="CIFARNet", family="CIFARNet", depth=8)
def lmht_cifarnet(pretrained: bool = False, **kwargs: Any) -> CIFARNet:
    """CIFARNet (Wu et al. 2019) as in the authors' models/VGG.py: BN, average pooling, 5 conv + 3 FC."""
    return build(CIFARNet, "lmht_cifarnet", pretrained, **kwargs)
