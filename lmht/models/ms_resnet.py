"""MS-ResNet-18 / 34: membrane-shortcut residual networks (activation before convolution).

Source: Hu et al., "Advancing Spiking Neural Networks Toward Deep Residual Learning" (MS-ResNet),
IEEE TNNLS 2024 (arXiv 2112.08954); LM-HT reports MS-ResNet-18 on CIFAR in its appendix (Table S1).

Membrane-shortcut block: the residual stream carries real values (membrane potentials in the SNN),
and every branch starts with the activation::

    out = x + BN2(conv2( ReLU2(BN1(conv1( ReLU1(x) ))) ))          (identity shortcut)
    out = BN(conv1×1_s(x)) + branch(x)                             (when the shape changes)

Adaptation for direct encoding (documented deviation): the LM-HT library runs the stem once on the
image and repeats the first neuron's output over time, so nothing but that first ReLU may read the
stem's output. The stem is therefore conv + BN + ReLU, and the very first block of the network
omits its leading ``ReLU1`` (its input already is that activation): the first residual stream
starts from the stem's activation. After the last block a final ReLU turns the residual stream
into activations (spikes) before global average pooling and the classifier.

Shapes for MS-ResNet-18 on [B, 3, 32, 32] (CIFAR stem): stem [B, 64, 32, 32] -> stages
[B, 64, 32, 32], [B, 128, 16, 16], [B, 256, 8, 8], [B, 512, 4, 4] -> final ReLU -> pool [B, 512]
-> head [B, classes]. MS-ResNet-34 defaults to the ImageNet stem (conv7×7/2 + BN + ReLU + 3×3/2
average pool, see :mod:`lmht.models.resnets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._factory import IMAGENET_MEAN, IMAGENET_STD, build, default_cfg, register
from .layers import Classifier, check_common_args, conv_bn, init_weights
from .resnets import check_stages, make_stem, shortcut


class MSBlock(nn.Module):
    """Membrane-shortcut basic block: [B, in, H, W] -> [B, out, H/s, W/s].

    Args:
        in_chans, out_chans, stride: as for a basic block.
        pre_act: apply the leading ReLU (False only for the block right after the stem).
    """

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1, pre_act: bool = True) -> None:
        super().__init__()
        self.relu1 = nn.ReLU() if pre_act else nn.Identity()
        self.conv1 = conv_bn(in_chans, out_chans, 3, stride)
        self.relu2 = nn.ReLU()
        self.conv2 = conv_bn(out_chans, out_chans, 3)
        self.shortcut = shortcut(in_chans, out_chans, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv2(self.relu2(self.conv1(self.relu1(x))))


class MSResNet(Classifier):
    """MS-ResNet of membrane-shortcut blocks (see the module docstring).

    Args:
        depths: blocks per stage, e.g. (2, 2, 2, 2) for MS-ResNet-18.
        widths: channels per stage; stage i > 0 starts with stride 2.
        num_classes: classifier outputs.
        in_chans: input channels.
        stem: ``"cifar"`` or ``"imagenet"`` (:data:`lmht.models.resnets.STEMS`).
    """

    def __init__(
        self,
        depths: Sequence[int],
        widths: Sequence[int],
        num_classes: int = 10,
        in_chans: int = 3,
        stem: str = "cifar",
    ) -> None:
        super().__init__()
        check_common_args(num_classes, in_chans)
        check_stages(depths, widths)
        self.num_classes, self.in_chans = num_classes, in_chans
        self.stem = make_stem(stem, in_chans, widths[0])
        stages, chans = [], widths[0]
        for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
            blocks = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(MSBlock(chans, width, stride, pre_act=(i, j) != (0, 0)))
                chans = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.final_act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = chans
        self.pre_logits = nn.Identity()
        self.head = nn.Linear(chans, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, H, W] -> pooled activations [B, widths[-1]]."""
        return self.pool(self.final_act(self.stages(self.stem(x)))).flatten(1)


default_cfgs = {
    "lmht_ms_resnet18": default_cfg(),
    "lmht_ms_resnet34": default_cfg((3, 224, 224), num_classes=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD),
}


@register
def lmht_ms_resnet18(pretrained: bool = False, **kwargs: Any) -> MSResNet:
    """MS-ResNet-18, CIFAR stem, widths 64/128/256/512, blocks [2, 2, 2, 2]."""
    args = dict(depths=(2, 2, 2, 2), widths=(64, 128, 256, 512), stem="cifar")
    return build(MSResNet, "lmht_ms_resnet18", pretrained, **{**args, **kwargs})


@register
def lmht_ms_resnet34(pretrained: bool = False, **kwargs: Any) -> MSResNet:
    """MS-ResNet-34, ImageNet stem (average pool), widths 64/128/256/512, blocks [3, 4, 6, 3]."""
    args = dict(depths=(3, 4, 6, 3), widths=(64, 128, 256, 512), stem="imagenet")
    return build(MSResNet, "lmht_ms_resnet34", pretrained, **{**args, **kwargs})
