"""Evaluation metrics: accuracy vs time, firing rates, synaptic operations and energy.

* :func:`accuracy_per_step` — accuracy of the cumulative (time-mean) output after each step
  ``t = 1..T`` from logits ``[T, B, C]``.
* :class:`FiringRateMonitor` — forward hooks on the spiking layers: mean level per neuron per step,
  ``mean(output / θ)`` (a level-``k`` spike counts ``k``).
* :class:`SynapticOpsCounter` — forward hooks on Conv/Linear layers. A layer fed by spikes costs one
  accumulate (AC) per input level and synapse: ``Σ_inputs level × fan-out`` with ``level = input / θ``
  (θ of the neuron layer that produced the input; after average pooling the same formula gives the
  level-weighted count). Layers that run before the first spiking layer receive analog input and cost
  one multiply-accumulate (MAC) per weight use. Energy uses the 45 nm figures common in SNN papers
  (Horowitz 2014): 0.9 pJ per AC and 4.6 pJ per MAC.

Everything here is pure PyTorch over plain modules: the spiking layers only need a ``threshold``
attribute (directly or on their ``.neuron``) and their outputs in units of θ.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AC_ENERGY_PJ",
    "MAC_ENERGY_PJ",
    "FiringRateMonitor",
    "OpsReport",
    "SynapticOpsCounter",
    "accuracy_per_step",
    "correct_per_step",
    "count_params",
    "energy_mj",
    "spiking_layers",
    "threshold_of",
]

AC_ENERGY_PJ = 0.9
MAC_ENERGY_PJ = 4.6
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def correct_per_step(logits_seq: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions of the cumulative output after each step.

    Args:
        logits_seq: ``[T, B, C]`` per-step outputs (``[B, C]`` is treated as T = 1).
        target: ``[B]`` class indices.
    Returns:
        ``[T]`` int64: ``Σ_b [argmax_c (1/t) Σ_{s≤t} logits_seq[s, b, c] == target_b]``.
    """
    if logits_seq.dim() == 2:
        logits_seq = logits_seq.unsqueeze(0)
    if logits_seq.dim() != 3 or logits_seq.shape[1] != target.shape[0]:
        raise ValueError(
            f"logits_seq must be [T, B, C] with B = {target.shape[0]}, got {tuple(logits_seq.shape)}"
        )
    steps = torch.arange(1, logits_seq.shape[0] + 1, device=logits_seq.device, dtype=torch.float32)
    cum = logits_seq.float().cumsum(0) / steps.view(-1, 1, 1)
    return (cum.argmax(-1) == target.view(1, -1)).sum(1)


def accuracy_per_step(logits_seq: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy in percent of the cumulative output after each step: ``[T, B, C] -> [T]``."""
    return correct_per_step(logits_seq, target).double() * (100.0 / target.shape[0])


def count_params(model: nn.Module) -> int:
    """Number of parameters (learnable or not) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def energy_mj(acs: float, macs: float) -> float:
    """Energy in millijoules: ``0.9 pJ · ACs + 4.6 pJ · MACs``."""
    return (AC_ENERGY_PJ * acs + MAC_ENERGY_PJ * macs) * 1e-9


def threshold_of(layer: nn.Module) -> float:
    """θ of a spiking layer (a neuron with ``.threshold`` or a wrapper with ``.neuron``)."""
    neuron = getattr(layer, "neuron", layer)
    theta = neuron.threshold
    return float(theta.item() if isinstance(theta, torch.Tensor) else theta)


def spiking_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of the spiking layers of ``model`` (``model.spiking_layers()`` when it has it)."""
    names = {m: n for n, m in model.named_modules()}
    if hasattr(model, "spiking_layers"):
        return [(names.get(m, type(m).__name__), m) for m in model.spiking_layers()]
    return []


class _Hooks:
    def __init__(self) -> None:
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class FiringRateMonitor(_Hooks):
    """Mean level per neuron per step of every spiking layer, accumulated over forwards.

    ``rate[layer] = Σ output / θ  /  (number of neurons · T · images)``. For an L-level neuron this lies
    in ``[0, L]``; for IF in ``[0, 1]``. Use as a context manager around evaluation forwards.
    """

    def __init__(self, model: nn.Module, layers: Iterable[tuple[str, nn.Module]] | None = None):
        super().__init__()
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        for name, layer in spiking_layers(model) if layers is None else layers:
            self.sums[name], self.counts[name] = 0.0, 0
            self._handles.append(layer.register_forward_hook(self._hook(name, layer)))

    def _hook(self, name: str, layer: nn.Module):
        def hook(_module, _inputs, output):
            with torch.no_grad():
                self.sums[name] += float(output.detach().double().sum()) / threshold_of(layer)
                self.counts[name] += output.numel()

        return hook

    def rates(self) -> dict[str, float]:
        return {n: (self.sums[n] / self.counts[n] if self.counts[n] else 0.0) for n in self.sums}


@dataclass
class OpsReport:
    """Operation counts per image: ``acs`` (spike-driven accumulates = SOPs), ``macs`` (analog layers)."""

    acs: float
    macs: float
    images: int
    per_layer: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def sops(self) -> float:
        return self.acs

    @property
    def energy_mj(self) -> float:
        return energy_mj(self.acs, self.macs)

    def as_dict(self) -> dict[str, object]:
        return {
            "sops": self.acs,
            "macs": self.macs,
            "energy_mj": self.energy_mj,
            "images": self.images,
            "per_layer": self.per_layer,
        }


class SynapticOpsCounter(_Hooks):
    """Count ACs (spike inputs) and MACs (analog inputs) of every Conv/Linear layer of ``model``.

    A Conv/Linear layer is *spike-fed* once a spiking layer has run in the current forward (execution
    order). Its input levels are ``x / θ``, θ being that of the spiking layer whose output tensor ``x``
    is (or is a view of); otherwise (e.g. after average pooling) that of the most recent spiking layer.

    * Linear: ``ACs = Σ levels × out_features``.
    * ConvNd: ``ACs = Σ_outputs Σ_receptive field levels × out_channels / groups``, computed exactly
      (padding and stride included) as ``convNd(Σ_channels levels, ones kernel, same stride/padding/
      dilation).sum() × out_channels / groups``.
    * Analog layers: ``MACs = output elements × (in_channels / groups × kernel size)`` (Linear:
      ``output elements × in_features``). With direct encoding the stem runs once on ``[B, ...]`` and is
      counted once.

    Images are counted from dim 0 of the model's input (``[B, ...]``). Results are per image.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.acs = 0.0
        self.macs = 0.0
        self.images = 0
        self.per_layer: dict[str, dict[str, float]] = {}
        self._recent: float | None = None
        self._outputs: dict[int, tuple[weakref.ref, float]] = {}
        self._handles.append(model.register_forward_pre_hook(self._start))
        for _, layer in spiking_layers(model):
            self._handles.append(layer.register_forward_hook(self._spiked(layer)))
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
                self.per_layer[name] = {"acs": 0.0, "macs": 0.0}
                self._handles.append(module.register_forward_hook(self._synapse(name)))

    def _start(self, _module, inputs):
        self._recent = None
        self._outputs.clear()
        x = inputs[0] if inputs else None
        if isinstance(x, torch.Tensor) and x.dim() > 0:
            self.images += x.shape[0]

    def _spiked(self, layer: nn.Module):
        def hook(_module, _inputs, output):
            theta = threshold_of(layer)
            self._recent = theta
            self._outputs[output.untyped_storage().data_ptr()] = (weakref.ref(output), theta)

        return hook

    def _theta_of(self, x: torch.Tensor) -> float:
        entry = self._outputs.get(x.untyped_storage().data_ptr())
        if entry is not None and entry[0]() is not None:
            return entry[1]
        assert self._recent is not None
        return self._recent

    def _synapse(self, name: str):
        def hook(module, inputs, output):
            x = inputs[0]
            with torch.no_grad():
                if self._recent is None:
                    fan_in = (
                        module.in_features
                        if isinstance(module, nn.Linear)
                        else (module.in_channels // module.groups * math.prod(module.kernel_size))
                    )
                    macs = float(output.numel()) * fan_in
                    self.macs += macs
                    self.per_layer[name]["macs"] += macs
                    return
                level = x.detach().double() / self._theta_of(x)
                if isinstance(module, nn.Linear):
                    acs = float(level.sum()) * module.out_features
                else:
                    nd = len(module.kernel_size)
                    if isinstance(module.padding, str):
                        raise ValueError(f"{name}: string padding is not supported by the SOP counter")
                    if module.padding_mode != "zeros":
                        raise ValueError(f"{name}: padding_mode={module.padding_mode!r} is not supported")
                    summed = level.sum(1, keepdim=True)  # [N, 1, *spatial]
                    ones = torch.ones((1, 1, *module.kernel_size), dtype=summed.dtype, device=summed.device)
                    reach = _CONV[nd](
                        summed, ones, stride=module.stride, padding=module.padding, dilation=module.dilation
                    )
                    acs = float(reach.sum()) * module.out_channels / module.groups
                self.acs += acs
                self.per_layer[name]["acs"] += acs

        return hook

    def report(self) -> OpsReport:
        n = max(self.images, 1)
        per_layer = {k: {"acs": v["acs"] / n, "macs": v["macs"] / n} for k, v in self.per_layer.items()}
        return OpsReport(acs=self.acs / n, macs=self.macs / n, images=self.images, per_layer=per_layer)
