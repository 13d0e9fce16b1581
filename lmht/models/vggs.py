"""VGG-11 / 13 / 16 with batch norm and ReLU, as the LM-HT authors build them (models/VGG.py for direct
training, ann_models/VGG.py for the hybrid table's QCFS ANNs).

Source: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015 (configurations A, B, D), with BN after every convolution and **2×2 average pooling** in
place of max pooling — both of the authors' files use average pooling (their max pool is commented
out), so it is the default here too; ``pool="max"`` is offered for studies (the exact conversion and
the reparameterization reject it).

Layout (the authors' groups; shapes for [B, 3, 32, 32])::

    stem        conv3×3 in→64 (+bias) + BN + ReLU              [B, 64, 32, 32]
    features    the remaining conv-BN-ReLU(-Dropout) of each group, a 2×2 pool after each group
                                                                [B, 512, 1, 1]  (2×2 at 64×64, 7×7 at 224×224)
    pool        adaptive avgpool to head_pool×head_pool, flatten
                                                                [B, 512·head_pool²]
    pre_logits  (Linear →hidden, ReLU, Dropout) × 2              [B, hidden]     (hidden=4096 by default)
    head        Linear hidden→classes                           [B, classes]

VGG-13 follows the authors' direct-training file (the paper's VGG-13 is trained directly, on
ImageNet-200): its groups are 64-64 / 128-128 / 256-256 / 512-512-512 / 512 and the last group ends
with a *global* average pool (``final_pool="global"``), ten convolutions as in configuration B.
``CONFIGS["vgg13_b"]`` is Simonyan & Zisserman's grouping (the authors' ann_models).

Classifier per dataset in the authors' code (the ``head_pool`` and ``hidden`` options; the flatten of
the final feature map equals ``head_pool`` = its side):

    ===================  ================================  =========================================
    dataset              direct VGG (models/VGG.py)        QCFS VGG (ann_models/VGG.py, hybrid)
    ===================  ================================  =========================================
    CIFAR-10/100         512→4096→4096→classes (default)   the same (default)
    ImageNet-200 (64²)   512→classes: ``hidden=0``         2·2·512→4096→4096: ``head_pool=2``
    ImageNet-1k (224²)   7·7·512→4096→4096: ``head_pool=7`` the same
    ===================  ================================  =========================================

Convolutions carry a bias (``conv_bias=True``, the authors'; BN makes it redundant in function).
Dropout (``drop_rate``, 0 in all of the authors' runs) follows every ReLU, as in their files (no
module at all when it is 0).
Parameters: VGG-16 ≈ 33.6 M with hidden 4096, ≈ 14.7 M with hidden 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._factory import build, default_cfg, register
from .layers import Classifier, check_common_args, conv_bn_relu, dropout, init_weights, make_pool

# Output channels of each convolution, grouped by the pool that ends the group.
CONFIGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512, 512), (512,)),  # the authors' direct VGG-13
    "vgg13_b": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),  # configuration B
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
}
FINAL_POOLS = ("avg", "global")


class VGG(Classifier):
    """VGG with BN (see the module docstring).

    Args:
        groups: channels of each convolution grouped by pooling stage (an entry of :data:`CONFIGS`).
        num_classes: classifier outputs.
        in_chans: input channels.
        hidden: width of the two hidden FC layers; 0 for a single linear classifier.
        drop_rate: dropout probability after every ReLU.
        pool: ``"avg"`` (the authors') or ``"max"``: the 2×2 pool after each group.
        final_pool: ``"avg"`` (a 2×2 pool like the others) or ``"global"`` (adaptive average pool to
            1×1, the authors' VGG-13) after the last group.
        head_pool: side of the adaptive average pool before flattening (the final map's side reproduces
            the authors' flatten).
        conv_bias: convolutions with a bias.
    """

    def __init__(
        self,
        groups: Sequence[Sequence[int]],
        num_classes: int = 10,
        in_chans: int = 3,
        hidden: int = 4096,
        drop_rate: float = 0.0,
        pool: str = "avg",
        final_pool: str = "avg",
        head_pool: int = 1,
        conv_bias: bool = True,
    ) -> None:
        super().__init__()
        check_common_args(num_classes, in_chans)
        if hidden < 0:
            raise ValueError(f"hidden must be >= 0, got {hidden}")
        if head_pool < 1:
            raise ValueError(f"head_pool must be >= 1, got {head_pool}")
        if final_pool not in FINAL_POOLS:
            raise ValueError(f"final_pool must be one of {list(FINAL_POOLS)}, got {final_pool!r}")
        self.num_classes, self.in_chans = num_classes, in_chans
        chans = [c for group in groups for c in group]
        self.stem = conv_bn_relu(in_chans, chans[0], bias=conv_bias)
        layers: list[nn.Module] = dropout(drop_rate)
        prev, first = chans[0], True
        for i, group in enumerate(groups):
            for c in group:
                if not first:
                    layers += [conv_bn_relu(prev, c, bias=conv_bias), *dropout(drop_rate)]
                first, prev = False, c
            last = i == len(groups) - 1
            global_pool = last and final_pool == "global"
            layers.append(nn.AdaptiveAvgPool2d(1) if global_pool else make_pool(pool, 2, 2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(head_pool)
        self.num_features = prev * head_pool**2
        if hidden:
            self.pre_logits = nn.Sequential(
                nn.Linear(self.num_features, hidden), nn.ReLU(), *dropout(drop_rate),
                nn.Linear(hidden, hidden), nn.ReLU(), *dropout(drop_rate),
            )  # fmt: skip
        else:
            self.pre_logits = nn.Identity()
        self.head = nn.Linear(hidden or self.num_features, num_classes)
        init_weights(self, zero_linear_bias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, H, W] -> [B, 512·head_pool²] (H, W multiples of 32 keep every pool exact)."""
        return self.pool(self.features(self.stem(x))).flatten(1)


default_cfgs = {f"lmht_{name}": default_cfg() for name in ("vgg11", "vgg13", "vgg16")}


def _vgg(name: str, pretrained: bool, kwargs: dict[str, Any], **defaults: Any) -> VGG:
    return build(VGG, f"lmht_{name}", pretrained, **{"groups": CONFIGS[name], **defaults, **kwargs})


@register(paper_name="VGG-11", family="VGG", depth=11)
def lmht_vgg11(pretrained: bool = False, **kwargs: Any) -> VGG:
    """VGG-11 (config A) with BN, average pooling, classifier 512-4096-4096-classes."""
    return _vgg("vgg11", pretrained, kwargs)


@register(paper_name="VGG-13", family="VGG", depth=13)
def lmht_vgg13(pretrained: bool = False, **kwargs: Any) -> VGG:
    """VGG-13 as the authors train it directly: groups 64-64/128-128/256-256/512-512-512/512, global
    average pool, classifier 512-4096-4096-classes (``hidden=0`` on ImageNet-200, as the authors)."""
    return _vgg("vgg13", pretrained, kwargs, final_pool="global")


@register(paper_name="VGG-16", family="VGG", depth=16)
def lmht_vgg16(pretrained: bool = False, **kwargs: Any) -> VGG:
    """VGG-16 (config D) with BN, average pooling, classifier 512-4096-4096-classes."""
    return _vgg("vgg16", pretrained, kwargs)
