"""Adapters between multi-step neurons and ordinary (stateless) layers.

Multi-step tensors are ``[T, B, ...]`` (``x_seq``). Stateless layers (conv, BN, linear, pooling) run on
all steps at once with ``T`` folded into the batch; the whole network in ``lmht.network`` runs folded,
so an ANN definition becomes an SNN by swapping its activations for ``SpikingActivation`` modules.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EncodingPoint", "EncodingState", "SeqToBatch", "SpikingActivation"]


class SeqToBatch(nn.Module):
    """Run a stateless module on every step at once: ``[T, B, ...] -> module([T·B, ...]) -> [T, B, ...]``."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.dim() < 2:
            raise ValueError(f"x_seq must be [T, B, ...], got shape {tuple(x_seq.shape)}")
        steps, batch = x_seq.shape[:2]
        y = self.module(x_seq.flatten(0, 1))
        return y.unflatten(0, (steps, batch))


class EncodingState:
    """Per-forward flag shared by a network's spiking layers: is direct encoding still pending?

    With direct encoding the stem (e.g. conv+BN) runs once on the static image ``[B, ...]``; the first
    spiking layer that runs sees the pending flag, repeats its (analog) input over T and clears it.
    Deciding at run time works for any module structure, with no tracing and no per-model code.
    """

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = False


class SpikingActivation(nn.Module):
    """A multi-step neuron placed where an ANN has its activation; the network runs time-folded.

    Input ``[T·B, ...]`` is viewed as ``[T, B, ...]``, fed to the neuron and folded back. If it is the
    encoding layer (first to run under direct encoding) its input is the analog current ``[B, ...]``,
    repeated over T. ``input_scale`` multiplies the input current (hybrid init: L for the first layer;
    reparameterization: ÷ L).

    Args:
        neuron: a multi-step neuron (``.T``, ``.L``, ``.threshold``).
        input_scale: factor applied to the input current.
    """

    def __init__(self, neuron: nn.Module, input_scale: float = 1.0):
        super().__init__()
        self.neuron = neuron
        self.input_scale = float(input_scale)
        self.encoding_state: EncodingState | None = None

    @property
    def T(self) -> int:
        return self.neuron.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = self.neuron.T
        if self.input_scale != 1.0:
            x = x * self.input_scale
        state = self.encoding_state
        if state is not None and state.pending:
            state.pending = False
            x_seq = x.unsqueeze(0).expand(steps, *x.shape)
        else:
            if x.shape[0] % steps:
                raise ValueError(f"input batch {x.shape[0]} is not a multiple of T={steps}: a spiking layer "
                                 "inside a network expects time-folded tensors [T*B, ...]")
            x_seq = x.unflatten(0, (steps, x.shape[0] // steps))
        return self.neuron(x_seq).flatten(0, 1)

    def extra_repr(self) -> str:
        return f"input_scale={self.input_scale:g}" if self.input_scale != 1.0 else ""


class EncodingPoint(nn.Module):
    """The place where direct encoding repeats the analog input over T; the identity in an ANN.

    By default the first spiking layer to run repeats its analog input ``[B, ...]`` over T. A model in
    which other layers also read the stem's output places an ``EncodingPoint`` right after the stem:
    MS-ResNet (Hu et al.; the authors' ``use_MSBlock`` ResNet) has no neuron after the stem, and its
    first block's shortcut carries the analog current into the residual stream. Inside a
    ``SpikingNetwork`` whose input is still pending (direct encoding, or the mean of event frames) it
    maps ``x [B, ...] -> input_scale · x`` repeated ``[T·B, ...]`` and clears the pending flag, so the
    first neuron then receives a time-folded input like every later layer.

    Attributes (set by ``SpikingNetwork``): ``encoding_state`` (None outside a network) and ``T``.
    ``input_scale`` multiplies the repeated input, like :attr:`SpikingActivation.input_scale`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.encoding_state: EncodingState | None = None
        self.T = 1
        self.input_scale = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.encoding_state
        if state is None or not state.pending:
            return x
        state.pending = False
        if self.input_scale != 1.0:
            x = x * self.input_scale
        return x.unsqueeze(0).expand(self.T, *x.shape).flatten(0, 1)

    def extra_repr(self) -> str:
        return f"input_scale={self.input_scale:g}" if self.input_scale != 1.0 else ""
