"""``SpikingNetwork``: run an ANN-shaped module as a multi-step SNN.

The wrapped module is an ordinary ANN whose activations are ``SpikingActivation`` modules. It runs
with T folded into the batch (``[T·B, ...]``), so conv/BN/linear/pooling/residual code is unchanged.

Encodings:
    ``direct`` (static images): ``x [B, C, H, W]``; the layers before the first neuron (the stem, e.g.
        conv+BN) run once and the first neuron repeats their output over T.
    ``frames`` (event data): ``x [B, F, C, H, W]``; the F frames are split into T contiguous bins of
        F/T frames and each bin is averaged (F must be a multiple of T), giving ``[T, B, C, H, W]``.
Output: logits ``[T, B, classes]``; the prediction is the mean over time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lmht.layers import EncodingState, SpikingActivation

__all__ = ["ENCODINGS", "SpikingNetwork", "leaf_modules"]

ENCODINGS = ("direct", "frames")


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
    Shapes:
        direct ``[B, C, H, W]`` / frames ``[B, F, C, H, W]`` -> ``[T, B, classes]``.
    """

    def __init__(self, model: nn.Module, T: int, encoding: str = "direct",
                 input_shape: Sequence[int] | None = None):
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.model = model
        self.encoding = encoding
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self._state = EncodingState()
        layers = self.spiking_layers()
        if not layers:
            raise ValueError("model has no SpikingActivation layers: convert its activations first "
                             "(lmht.convert.build_snn / qcfs_to_lmht / qcfs_to_if)")
        for layer in layers:
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
        self._T = value

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

    # ------------------------------------------------------------------ forward
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> what the wrapped model runs on: ``[B, ...]`` (direct) or ``[T·B, ...]`` (frames)."""
        if self.encoding == "direct":
            if x.dim() < 2:
                raise ValueError(f"direct encoding expects [B, ...] input, got shape {tuple(x.shape)}")
            return x
        if x.dim() < 3:
            raise ValueError(f"frames encoding expects [B, F, ...] input, got shape {tuple(x.shape)}")
        frames = x.shape[1]
        if frames % self.T:
            raise ValueError(f"frames encoding: {frames} frames cannot be split into T={self.T} equal bins")
        bins = x.unflatten(1, (self.T, frames // self.T)).mean(2)  # [B, T, ...]
        return bins.transpose(0, 1).flatten(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._state.pending = self.encoding == "direct"
        try:
            out = self.model(self.encode(x))
        finally:
            pending, self._state.pending = self._state.pending, False
        if pending:
            raise RuntimeError("direct encoding: no spiking layer ran during the forward pass")
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
