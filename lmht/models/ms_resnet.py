"""MS-ResNet-18 / 34: membrane-shortcut residual networks (activation before convolution).

Source: Hu et al., "Advancing Spiking Neural Networks Toward Deep Residual Learning" (MS-ResNet),
IEEE TNNLS 2024 (arXiv 2112.08954); LM-HT reports MS-ResNet-18 on CIFAR in its appendix (Table S1),
built by the authors' models/ResNet.py with ``use_MSBlock=True``.

Membrane-shortcut block: the residual stream carries real values (membrane potentials in the SNN),
and every branch starts with the activation::

    out = x + BN2(conv2( ReLU2(BN1(conv1( ReLU1(x) ))) ))          (identity shortcut)
    out = BN(conv1×1_s(x)) + branch(x)                             (when the shape changes)

Default (``stem_neuron=False``, the authors' layout): the stem is conv + BN with **no neuron**, so the
residual stream starts from the analog stem output; the first block's ``ReLU1`` is the first neuron,
and the last block's stream goes straight to global average pooling and the classifier (no neuron
after the last block). Under direct encoding the stem still runs once: an
:class:`lmht.layers.EncodingPoint` after the stem repeats its output over T for both the first neuron
and the first shortcut. (Conversion note: the analog input also enters the residual stream, so the
hybrid initialization's × L and the reparameterization's ÷ L apply at the ``EncodingPoint``, to both
paths; the exact initialization and the reparameterization stay exact, as the authors' reparameterized
MS-ResNet-34 scales its input at the same point.)

``stem_neuron=True`` (our variant): stem conv + BN + ReLU, the first block without
its leading ``ReLU1`` (its input already is that activation), and a final ReLU after the last block,
so every layer after the stem reads spikes.

Shapes for MS-ResNet-18 on [B, 3, 32, 32] (CIFAR stem): stem [B, 64, 32, 32] -> stages
[B, 64, 32, 32], [B, 128, 16, 16], [B, 256, 8, 8], [B, 512, 4, 4] -> pool [B, 512] -> head
[B, classes]. ``stem="imagenet"`` gives conv7×7/2 + BN + 3×3/2 max pool (``stem_pool="avg"``: average),
see :mod:`lmht.models.resnets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lmht.layers import EncodingPoint

from ._factory import build, default_cfg, register
from .layers import Classifier, check_common_args, conv_bn, init_weights
from .resnets import check_stages, make_stem, shortcut, stage_strides


class MSBlock(nn.Module):
    """Membrane-shortcut basic block: [B, in, H, W] -> [B, out, H/s, W/s].

    Args:
        in_chans, out_chans, stride: as for a basic block.
        pre_act: apply the leading ReLU (False only for the first block of the ``stem_neuron`` variant).
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
        widths: channels per stage.
        num_classes: classifier outputs.
        in_chans: input channels.
        stem: ``"cifar"`` or ``"imagenet"`` (:func:`lmht.models.resnets.make_stem`).
        stem_pool: the ImageNet stem's pool, ``"max"`` (the authors) or ``"avg"``.
        stem_neuron: False = the authors' layout (no neuron after the stem or the last block);
            True = our conversion-exact variant (module docstring).
        strides: stride of each stage's first block (default 1, 2, 2, …).
    """

    def __init__(
        self,
        depths: Sequence[int],
        widths: Sequence[int],
        num_classes: int = 10,
        in_chans: int = 3,
        stem: str = "cifar",
        stem_pool: str = "max",
        stem_neuron: bool = False,
        strides: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_common_args(num_classes, in_chans)
        strides = stage_strides(depths, strides)
        check_stages(depths, widths, strides)
        self.num_classes, self.in_chans = num_classes, in_chans
        self.stem = make_stem(stem, in_chans, widths[0], stem_pool, act=stem_neuron)
        if not stem_neuron:
            self.stem.append(EncodingPoint())
        stages, chans = [], widths[0]
        for i, (depth, width, stride) in enumerate(zip(depths, widths, strides, strict=True)):
            blocks = []
            for j in range(depth):
                pre_act = not (stem_neuron and (i, j) == (0, 0))
                blocks.append(MSBlock(chans, width, stride if j == 0 else 1, pre_act=pre_act))
                chans = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.final_act = nn.ReLU() if stem_neuron else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = chans
        self.pre_logits = nn.Identity()
        self.head = nn.Linear(chans, num_classes)
        init_weights(self, zero_linear_bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, H, W] -> pooled residual stream [B, widths[-1]]."""
        return self.pool(self.final_act(self.stages(self.stem(x)))).flatten(1)


default_cfgs = {"lmht_ms_resnet18": default_cfg(), "lmht_ms_resnet34": default_cfg()}


@register(paper_name="MS-ResNet-18", family="MS-ResNet", depth=18)
def lmht_ms_resnet18(pretrained: bool = False, **kwargs: Any) -> MSResNet:
    """MS-ResNet-18, CIFAR stem without neuron, widths 64/128/256/512, blocks [2, 2, 2, 2]."""
    args = dict(depths=(2, 2, 2, 2), widths=(64, 128, 256, 512))
    return build(MSResNet, "lmht_ms_resnet18", pretrained, **{**args, **kwargs})


@register(paper_name="MS-ResNet-34", family="MS-ResNet", depth=34)
def lmht_ms_resnet34(pretrained: bool = False, **kwargs: Any) -> MSResNet:
    """MS-ResNet-34, CIFAR stem without neuron (``stem="imagenet"`` for ImageNet), blocks [3, 4, 6, 3]."""
    args = dict(depths=(3, 4, 6, 3), widths=(64, 128, 256, 512))
    return build(MSResNet, "lmht_ms_resnet34", pretrained, **{**args, **kwargs})
