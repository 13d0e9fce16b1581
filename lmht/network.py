"""``SpikingNetwork``: run an ANN-shaped module as a multi-step SNN.

The wrapped module is an ordinary ANN whose activations are ``SpikingActivation`` modules. It runs
with T folded into the batch (``[T·B, ...]``), so conv/BN/linear/pooling/residual code is unchanged.

Encodings:
    ``direct`` (static images): ``x [B, C, H, W]``; the layers before the first neuron (the stem, e.g.
        conv+BN) run once and the first neuron repeats their output over T (or an
        :class:`lmht.layers.EncodingPoint` placed by the model does, see there).
    ``frames`` (event data): ``x [B, F, C, H, W]``, turned into the network's input by ``frame_input``:

        ``"mean"`` (default, the authors' CIFAR10-DVS ResNet, models/ResNet.py ``use_dvs``): the F frames
            are averaged, ``x̄ = (1/F) Σ_f x_f  [B, C, H, W]``, and the network then runs exactly as
            with direct encoding: the stem once, the first neuron's T-GIM spreads the repeated current
            over the T steps; any F and T work together.
        ``"bins"`` (our variant): the F frames are cut into T contiguous bins of F/T frames and each bin
            is averaged, ``x_t = (T/F) Σ_{f in bin t} x_f``, giving ``[T, B, C, H, W]``: every layer,
            the stem included, runs on all T steps (F must be a multiple of T).

    The first layer's T-GIM under ``"mean"``: the repeated current gives ``I_t = Σ_j Ω[t, j] x̄`` with
    the paper's ``Ω = 2σ(ω)/T`` (Eq. of §4.3), i.e. a per-step gain ``Σ_j 2σ(ω[t, j])/T ∈ (0, 2)``, 1 at
    the uniform start. The authors' code feeds that neuron one input step, divides by the number of
    input steps (1) and broadcasts the T-GIM row over it: a gain ``Σ_j 2σ(ω[t, j]) ∈ (0, 2T)``, T at
    the start. The BN before the neuron can absorb the factor T (same functions); the starting point
    and that layer's effective learning rate differ. We follow the paper's Ω (docs/fidelity.md).
Output: logits ``[T, B, classes]``; the prediction is the mean over time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lmht.layers import EncodingPoint, EncodingState, SpikingActivation

__all__ = ["ENCODINGS", "FRAME_INPUTS", "SpikingNetwork", "leaf_modules"]

ENCODINGS = ("direct", "frames")
FRAME_INPUTS = ("mean", "bins")  # how event frames [B, F, ...] enter the network; the first is the default


def leaf_modules(model: nn.Module):
    """``(name, module)`` of the modules that compute: leaves, with ``SpikingActivation`` kept whole."""
    for name, module in model.named_modules():
        if isinstance(module, SpikingActivation):
            yield name, module
        elif not any(True for _ in module.children()) and not _inside_spiking(name, model):
            yield name, module


def _inside_spiking(name: str, model: nn.Module) -> bool:
    parts = name.split(".")
    for i in range(1, len(parts)):
        if isinstance(model.get_submodule(".".join(parts[:i])), SpikingActivation):
            return True
    return False


class SpikingNetwork(nn.Module):
    """Multi-step SNN around an ANN-shaped ``model`` whose activations are ``SpikingActivation``s.

    Args:
        model: the network; its spiking layers must each appear once (one neuron per site).
        T: time steps.
        encoding: ``"direct"`` or ``"frames"`` (see module docstring).
        input_shape: per-sample input shape (``(C, H, W)`` or ``(F, C, H, W)``), used by
            ``execution_order()`` and the conversions; optional.
        frame_input: ``"mean"`` (default) or ``"bins"``: how ``"frames"`` input enters (module
            docstring); ignored for ``"direct"``.
    Shapes:
        direct ``[B, C, H, W]`` / frames ``[B, F, C, H, W]`` -> ``[T, B, classes]``.
    """

    def __init__(self, model: nn.Module, T: int, encoding: str = "direct",
                 input_shape: Sequence[int] | None = None, frame_input: str = "mean"):
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        if frame_input not in FRAME_INPUTS:
            raise ValueError(f"frame_input must be one of {FRAME_INPUTS}, got {frame_input!r}")
        self.model = model
        self.encoding = encoding
        self.frame_input = frame_input
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self._state = EncodingState()
        layers = self.spiking_layers()
        if not layers:
            raise ValueError("model has no SpikingActivation layers: convert its activations first "
                             "(lmht.convert.build_snn / qcfs_to_lmht / qcfs_to_if)")
        for layer in [*layers, *self.encoding_points()]:
            layer.encoding_state = self._state
        self.T = T
        self.train(model.training)  # keep the wrapped model's mode (e.g. an ANN in eval mode)

    # ------------------------------------------------------------------ time steps
    @property
    def T(self) -> int:
        return self._T

    @T.setter
    def T(self, value: int) -> None:
        for layer in self.spiking_layers():
            layer.neuron.T = value
        for point in self.encoding_points():
            point.T = value
        self._T = value

    @property
    def repeats_input(self) -> bool:
        """True when the input enters once and is repeated over T (direct, or the mean of the frames)."""
        return self.encoding == "direct" or self.frame_input == "mean"

    @property
    def L(self) -> int:
        """Levels of the spiking layers (ValueError if they differ)."""
        levels = {layer.neuron.L for layer in self.spiking_layers()}
        if len(levels) != 1:
            raise ValueError(f"spiking layers have different L: {sorted(levels)}")
        return levels.pop()

    def spiking_layers(self) -> list[SpikingActivation]:
        """Spiking layers in registration order (``execution_order()`` gives the run order)."""
        seen: dict[int, SpikingActivation] = {}
        for module in self.model.modules():
            if isinstance(module, SpikingActivation):
                seen.setdefault(id(module), module)
        return list(seen.values())

    def encoding_points(self) -> list[EncodingPoint]:
        """The model's :class:`lmht.layers.EncodingPoint` modules (empty for most models)."""
        return [m for m in self.model.modules() if isinstance(m, EncodingPoint)]

    # ------------------------------------------------------------------ forward
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> what the model runs on: ``[B, ...]`` (direct, frame mean) or ``[T·B, ...]`` (bins)."""
        if self.encoding == "direct":
            if x.dim() < 2:
                raise ValueError(f"direct encoding expects [B, ...] input, got shape {tuple(x.shape)}")
            return x
        if x.dim() < 3:
            raise ValueError(f"frames encoding expects [B, F, ...] input, got shape {tuple(x.shape)}")
        if self.frame_input == "mean":
            return x.mean(1)
        frames = x.shape[1]
        if frames % self.T:
            raise ValueError(f"frame_input='bins': {frames} frames cannot be split into T={self.T} equal "
                             "bins (use frame_input='mean', or F a multiple of T)")
        bins = x.unflatten(1, (self.T, frames // self.T)).mean(2)  # [B, T, ...]
        return bins.transpose(0, 1).flatten(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._state.pending = self.repeats_input
        try:
            out = self.model(self.encode(x))
        finally:
            pending, self._state.pending = self._state.pending, False
        if pending:
            raise RuntimeError("repeated input (direct encoding or frame mean): no spiking layer or "
                               "EncodingPoint ran during the forward pass")
        return out.unflatten(0, (self.T, -1))

    # ------------------------------------------------------------------ structure
    def execution_order(self, input_shape: Sequence[int] | None = None) -> list[tuple[str, nn.Module]]:
        """Leaf modules (``SpikingActivation`` counted as a leaf) in the order one forward runs them.

        Runs one forward pass on zeros of ``input_shape`` (batch 1) in eval mode with hooks. Raises
        ValueError if a spiking layer runs twice (a neuron has state: one instance per site).
        """
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError("input_shape: needed to trace the execution order (per-sample shape)")
        order: list[tuple[str, nn.Module]] = []
        calls: dict[int, int] = {}

        def hook(name):
            def record(module, args, output):
                calls[id(module)] = calls.get(id(module), 0) + 1
                order.append((name, module))
            return record

        handles = [m.register_forward_hook(hook(n)) for n, m in leaf_modules(self.model)]
        was_training = self.training
        param = next(self.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.get_default_dtype()
        try:
            self.eval()
            with torch.no_grad():
                self(torch.zeros((1, *shape), device=device, dtype=dtype))
        finally:
            for handle in handles:
                handle.remove()
            self.train(was_training)
        reused = [n for n, m in order if isinstance(m, SpikingActivation) and calls[id(m)] > 1]
        if reused:
            raise ValueError(f"spiking layer(s) {sorted(set(reused))} run more than once per forward: "
                             "a neuron has state, use one activation module per site")
        return order
