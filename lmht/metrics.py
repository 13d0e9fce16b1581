"""Evaluation metrics: accuracy vs time, firing rates, synaptic operations and energy.

* :func:`accuracy_per_step` — accuracy of the cumulative (time-mean) output after each step
  ``t = 1..T`` from logits ``[T, B, C]``.
* :class:`FiringRateMonitor` — forward hooks on the spiking layers: mean level per neuron per step,
  ``mean(output / θ)`` (a level-``k`` spike counts ``k``).
* :class:`SynapticOpsCounter` — forward hooks on Conv/Linear layers; :class:`OpsReport` its per-image
  figures. Counts, per image, over all T steps (a Conv/Linear layer is *spike-fed* once a spiking
  layer has run in the forward; the layers before the first neuron are *analog*):

  ``sops``              Σ over spike-fed layers of Σ_inputs (input level k) × fan-out, ``k = x / θ``:
                        a level-k spike costs k accumulates, so the count is unchanged by the
                        reparameterization to T·L single-threshold steps (Table 2 of the paper).
  ``sops_value``        the authors' counter (monitor.py ``SOPMonitor``): Σ of the input *values*
                        ``x = k·θ`` × fan-out over the same layers (it skips the analog first conv).
                        Equal to ``sops`` when θ = 1 — every setting of Tables 1–2 (L ≤ 2, θ = 2/L).
  ``first_layer_macs``  MACs of the analog layers before the first neuron (the stem).
  ``ann_macs``          MACs of one forward of the same architecture as an ANN: every Conv/Linear
                        once per image (output elements × fan-in).

  Energy (45 nm figures, Horowitz 2014, used by the paper): ``energy_mj = 0.9 pJ × sops`` — the
  paper's E (Table 1: 1.60 G SOPs -> 1.44 mJ; the authors' main.py); ``energy_first_layer_mac_mj =
  0.9 pJ × sops + 4.6 pJ × first_layer_macs`` (the other common convention, named separately);
  ``ann_energy_mj = 4.6 pJ × ann_macs`` and ``as_ratio = ann_energy_mj / energy_mj`` (the authors'
  "A/S Power Ratio"). After average pooling the input levels are fractional and the same formulas
  apply (the pooled value is what the next layer accumulates). Matrix products that are not
  Conv/Linear layers (Spikformer's attention) are not counted, as in the authors' counter.

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
    "OPS_FIELDS",
    "FiringRateMonitor",
    "OpsReport",
    "SynapticOpsCounter",
    "accuracy_per_step",
    "ann_energy_mj",
    "correct_per_step",
    "count_params",
    "energy_first_layer_mac_mj",
    "sop_energy_mj",
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


_PJ_TO_MJ = 1e-9


def sop_energy_mj(sops: float) -> float:
    """The paper's energy in millijoules: ``E = 0.9 pJ × SOPs`` (1.60 G SOPs -> 1.44 mJ)."""
    return AC_ENERGY_PJ * sops * _PJ_TO_MJ


def energy_first_layer_mac_mj(sops: float, first_layer_macs: float) -> float:
    """The other common convention, in millijoules: ``0.9 pJ × SOPs + 4.6 pJ × first-layer MACs``."""
    return (AC_ENERGY_PJ * sops + MAC_ENERGY_PJ * first_layer_macs) * _PJ_TO_MJ


def ann_energy_mj(macs: float) -> float:
    """An ANN's energy in millijoules: ``4.6 pJ × MACs``."""
    return MAC_ENERGY_PJ * macs * _PJ_TO_MJ


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


OPS_FIELDS = ("sops", "sops_value", "first_layer_macs", "ann_macs")  # the counter's summed quantities


@dataclass
class OpsReport:
    """Operation counts and energies per image (definitions in the module docstring).

    Attributes:
        sops: level-weighted synaptic operations (a level-k spike costs k accumulates).
        sops_value: the authors' count, Σ input values × fan-out over the same layers.
        first_layer_macs: MACs of the analog layers before the first neuron.
        ann_macs: MACs of the same architecture run once as an ANN.
        images: images counted.
        per_layer: ``{layer name: {field: value per image}}`` for the fields of :data:`OPS_FIELDS`.
    """

    sops: float
    sops_value: float
    first_layer_macs: float
    ann_macs: float
    images: int
    per_layer: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def energy_mj(self) -> float:
        """The paper's E = 0.9 pJ × SOPs, in mJ."""
        return sop_energy_mj(self.sops)

    @property
    def energy_first_layer_mac_mj(self) -> float:
        """0.9 pJ × SOPs + 4.6 pJ × first-layer MACs, in mJ."""
        return energy_first_layer_mac_mj(self.sops, self.first_layer_macs)

    @property
    def ann_energy_mj(self) -> float:
        """4.6 pJ × ANN MACs, in mJ."""
        return ann_energy_mj(self.ann_macs)

    @property
    def as_ratio(self) -> float | None:
        """The authors' A/S power ratio ``ann_energy_mj / energy_mj``; None when there are no SOPs."""
        return self.ann_energy_mj / self.energy_mj if self.sops > 0 else None

    def as_dict(self) -> dict[str, object]:
        """Every count and energy by its field name (the names ``metrics.json`` uses)."""
        return {
            "sops": self.sops,
            "sops_value": self.sops_value,
            "first_layer_macs": self.first_layer_macs,
            "energy_mj": self.energy_mj,
            "energy_first_layer_mac_mj": self.energy_first_layer_mac_mj,
            "ann_macs": self.ann_macs,
            "ann_energy_mj": self.ann_energy_mj,
            "as_ratio": self.as_ratio,
            "images": self.images,
            "per_layer": self.per_layer,
        }


def _fan_in(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.in_features
    return module.in_channels // module.groups * math.prod(module.kernel_size)


class SynapticOpsCounter(_Hooks):
    """Count the quantities of :data:`OPS_FIELDS` for every Conv/Linear layer of ``model``.

    A Conv/Linear layer is *spike-fed* once a spiking layer has run in the current forward (execution
    order). Its input levels are ``x / θ``, θ being that of the spiking layer whose output tensor ``x``
    is (or is a view of); otherwise (e.g. after average pooling) that of the most recent spiking layer.

    * Linear: ``Σ levels × out_features``.
    * ConvNd: ``Σ_outputs Σ_receptive field levels × out_channels / groups``, computed exactly
      (padding and stride included) as ``convNd(Σ_channels levels, ones kernel, same stride/padding/
      dilation).sum() × out_channels / groups``.
    * ``sops_value``: the same with the input values ``x`` in place of the levels.
    * Analog layers (before the first neuron): ``first_layer_macs = output elements × fan-in``. With
      direct encoding the stem runs once on ``[B, ...]`` and is counted once.
    * ``ann_macs``: every layer's ``output elements × fan-in`` divided by its number of time steps in
      the batch dimension (``output.shape[0] / B``).

    Images are counted from dim 0 of the model's input (``[B, ...]``). :attr:`totals` holds the sums
    over all images (all-reduce them across processes, then call :meth:`report` with the result).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.totals: dict[str, float] = dict.fromkeys(OPS_FIELDS, 0.0)
        self.images = 0
        self.per_layer: dict[str, dict[str, float]] = {}
        self._batch = 1
        self._recent: float | None = None
        self._outputs: dict[int, tuple[weakref.ref, float]] = {}
        self._handles.append(model.register_forward_pre_hook(self._start))
        for _, layer in spiking_layers(model):
            self._handles.append(layer.register_forward_hook(self._spiked(layer)))
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
                self.per_layer[name] = dict.fromkeys(OPS_FIELDS, 0.0)
                self._handles.append(module.register_forward_hook(self._synapse(name)))

    @property
    def acs(self) -> float:
        """Summed ``sops`` (all images)."""
        return self.totals["sops"]

    @property
    def macs(self) -> float:
        """Summed ``first_layer_macs`` (all images)."""
        return self.totals["first_layer_macs"]

    def _start(self, _module, inputs):
        self._recent = None
        self._outputs.clear()
        x = inputs[0] if inputs else None
        if isinstance(x, torch.Tensor) and x.dim() > 0:
            self.images += x.shape[0]
            self._batch = max(int(x.shape[0]), 1)

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

    @staticmethod
    def _reach(name: str, module: nn.Module, x: torch.Tensor) -> float:
        """``Σ_inputs x × fan-out`` of ``module`` for input ``x`` (definitions in the class docstring)."""
        if isinstance(module, nn.Linear):
            return float(x.sum()) * module.out_features
        if isinstance(module.padding, str):
            raise ValueError(f"{name}: string padding is not supported by the SOP counter")
        if module.padding_mode != "zeros":
            raise ValueError(f"{name}: padding_mode={module.padding_mode!r} is not supported")
        summed = x.sum(1, keepdim=True)  # [N, 1, *spatial]
        ones = torch.ones((1, 1, *module.kernel_size), dtype=summed.dtype, device=summed.device)
        reach = _CONV[len(module.kernel_size)](
            summed, ones, stride=module.stride, padding=module.padding, dilation=module.dilation
        )
        return float(reach.sum()) * module.out_channels / module.groups

    def _add(self, name: str, key: str, value: float) -> None:
        self.totals[key] += value
        self.per_layer[name][key] += value

    def _synapse(self, name: str):
        def hook(module, inputs, output):
            x = inputs[0]
            with torch.no_grad():
                macs = float(output.numel()) * _fan_in(module)
                self._add(name, "ann_macs", macs / max(output.shape[0] // self._batch, 1))
                if self._recent is None:
                    self._add(name, "first_layer_macs", macs)
                    return
                value = x.detach().double()
                self._add(name, "sops", self._reach(name, module, value / self._theta_of(x)))
                self._add(name, "sops_value", self._reach(name, module, value))

        return hook

    def report(self, totals: dict[str, float] | None = None, images: float | None = None) -> OpsReport:
        """Per-image :class:`OpsReport` of ``totals`` / ``images`` (default: this counter's own sums).

        ``per_layer`` always comes from this process's own counts.
        """
        totals = self.totals if totals is None else totals
        count = self.images if images is None else images
        n, own = max(count, 1), max(self.images, 1)
        per_layer = {k: {f: v / own for f, v in d.items()} for k, d in self.per_layer.items()}
        return OpsReport(**{f: totals[f] / n for f in OPS_FIELDS}, images=int(count), per_layer=per_layer)
