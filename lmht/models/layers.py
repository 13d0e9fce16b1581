"""Shared building blocks of the model zoo: conv+BN stems, weight init and the classifier interface.

Conventions every architecture follows (the conversion code in :mod:`lmht.convert` relies on them):

* activations are ``nn.ReLU`` modules, one instance per activation site (each becomes a stateful
  spiking neuron, so no instance is reused);
* average pooling wherever the authors' code uses it; max pooling only where the authors' code has
  it (ResNet's ImageNet stem, Spikformer's patch splitting), each time with a named average-pooling
  option, because the exact ANN→SNN conversion and the reparameterization need average pooling;
* the network starts with ``stem`` = conv + BN + ReLU, so with direct encoding the stem runs once on
  the image and its ReLU (the first neuron) receives the analog input current. A network whose first
  neuron must not be the only reader of the stem's output (MS-ResNet: the residual stream carries the
  analog input) puts an :class:`lmht.layers.EncodingPoint` after the stem instead.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(
    in_chans: int, out_chans: int, kernel_size: int = 3, stride: int = 1, bias: bool = False
) -> nn.Sequential:
    """``Conv2d`` + ``BatchNorm2d`` with "same" padding: [B, in, H, W] -> [B, out, H/s, W/s].

    ``bias=True`` gives the conv a bias (the authors' VGG); BN's shift makes it redundant in function,
    but it is a parameter (counted, weight-decayed) all the same.
    """
    conv = nn.Conv2d(in_chans, out_chans, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)
    return nn.Sequential(conv, nn.BatchNorm2d(out_chans))


def conv_bn_relu(
    in_chans: int, out_chans: int, kernel_size: int = 3, stride: int = 1, bias: bool = False
) -> nn.Sequential:
    """:func:`conv_bn` followed by its own ``nn.ReLU``: [B, in, H, W] -> [B, out, H/s, W/s]."""
    return nn.Sequential(*conv_bn(in_chans, out_chans, kernel_size, stride, bias), nn.ReLU())


def init_weights(model: nn.Module, zero_linear_bias: bool = True) -> None:
    """Kaiming-normal (fan_out, ReLU) convolutions with zero bias, BN weight 1 and bias 0.

    Linear layers keep PyTorch's default initialization, with their bias zeroed when
    ``zero_linear_bias`` (the authors' VGG does, their ResNet does not).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Conv1d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None and zero_linear_bias:
            nn.init.zeros_(m.bias)


def dropout(rate: float) -> list[nn.Module]:
    """``[nn.Dropout(rate)]``, or ``[]`` when ``rate`` is 0 (no inert modules in the printed model)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"drop_rate must be in [0, 1), got {rate}")
    return [nn.Dropout(rate)] if rate else []


def make_pool(kind: str, kernel_size: int, stride: int, padding: int = 0) -> nn.Module:
    """``"avg"`` -> ``nn.AvgPool2d``, ``"max"`` -> ``nn.MaxPool2d`` with the same geometry.

    Raises ValueError for another ``kind`` (the message names the two kinds).
    """
    if kind == "avg":
        return nn.AvgPool2d(kernel_size, stride, padding)
    if kind == "max":
        return nn.MaxPool2d(kernel_size, stride, padding)
    raise ValueError(f"pooling kind must be 'avg' or 'max', got {kind!r}")


class Classifier(nn.Module):
    """Base class: ``forward = forward_head(forward_features(x))``, timm-style.

    Subclasses set ``num_classes``, ``in_chans``, ``num_features`` (width of the pooled features),
    ``pre_logits`` (``nn.Identity`` or hidden Linear+ReLU layers before the classifier) and ``head``
    (the final ``nn.Linear``), and implement :meth:`forward_features` ([B, C, H, W] -> [B, num_features]).
    timm's ``get_classifier`` / ``reset_classifier`` conventions are provided.
    """

    num_classes: int
    in_chans: int
    num_features: int
    pre_logits: nn.Module
    head: nn.Linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """[B, num_features] -> [B, num_classes] (or the input of ``head`` with ``pre_logits=True``)."""
        x = self.pre_logits(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, H, W] -> logits [B, num_classes]."""
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final linear layer by a fresh one with ``num_classes`` outputs."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.head = nn.Linear(self.head.in_features, num_classes)


def check_common_args(num_classes: int, in_chans: int) -> None:
    """Raise ValueError for a non-positive ``num_classes`` or ``in_chans``."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if in_chans < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}")
