"""Spiking neurons (multi-step, ``x_seq [T, B, ...] -> [T, B, ...]``) and the QCFS activation.

``LMHTNeuron`` (Hao et al., NeurIPS 2024, Eqs. 5-9: L levels, T-GIM, learnable leak; multi-step only),
``IFNeuron`` (vanilla IF, ``leak < 1``: LIF; full BPTT by default, the authors' baseline),
``SingleThresholdNeuron`` (``LMHTNeuron.to_single_threshold()``: IF over T·L steps, Sec. 4.4) and
``QCFS`` (the quantized ANN activation LM-HT is equivalent to, Theorem 4.4). Spikes are
``{0, θ, …, Lθ}`` (level k fires when ``v ≥ fl(k·θ)``); θ is fixed. ``create_neuron(name, ...)``
builds ``lmht``, ``mht`` (no T-GIM, fixed λ), ``if`` and ``lif`` by name.

Defaults are the paper's method; our variants are named arguments: ``LMHTNeuron(tgim_param="direct")``
(unbounded Ω, can represent the identity) and ``IFNeuron(gradient="detached")`` (recurrence and reset
cut, like LM-HT's STBP).

Over 400 lines because it holds all four neuron modules with their shared multi-step base and registry
(the maths is in :mod:`lmht.functional`, the kernels in :mod:`lmht.kernels`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from lmht.functional import NeuronParams, qcfs
from lmht.kernels import get_backend
from lmht.surrogate import create_surrogate

__all__ = [
    "IF_GRADIENTS",
    "QCFS",
    "TGIM_INITS",
    "TGIM_PARAMS",
    "IFNeuron",
    "LMHTNeuron",
    "SingleThresholdNeuron",
    "create_neuron",
    "list_neurons",
    "register_neuron",
]

#: T-GIM initializations of ``LMHTNeuron``
TGIM_INITS = ("uniform", "identity", "random")
#: T-GIM parametrizations: the paper's bounded ``(2/T)·σ(ω)`` (default), our unbounded direct Ω
TGIM_PARAMS = ("sigmoid", "direct")
#: gradients of ``IFNeuron``: full BPTT (default, the authors' baseline), our detached recurrence
IF_GRADIENTS = ("bptt", "detached")


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _check_threshold(value) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"threshold must be a finite number > 0, got {value!r}")
    return value


class _MultiStepNeuron(nn.Module):
    """Shared plumbing: argument checks, input validation, backend dispatch.

    Subclasses provide ``L``, ``tgim_or_none()`` and ``leak_seq_or_none()``, and set ``bptt`` (False:
    the recurrence and the reset are detached).
    """

    L: int
    bptt: bool = False

    def __init__(self, T: int, threshold: float, v_init: float, surrogate, backend: str | None):
        super().__init__()
        self._T = _check_positive_int("T", T)
        self.threshold = _check_threshold(threshold)
        if not math.isfinite(float(v_init)):
            raise ValueError(f"v_init must be finite (a fraction of the threshold), got {v_init!r}")
        self.v_init = float(v_init)
        self.surrogate = create_surrogate(surrogate)
        get_backend(backend)  # fail early on an unknown name
        self.backend = backend

    @property
    def T(self) -> int:
        return self._T

    @T.setter
    def T(self, value: int) -> None:
        self._T = _check_positive_int("T", value)

    @property
    def params(self) -> NeuronParams:
        return NeuronParams(self.L, self.threshold, self.v_init, self.bptt)

    def tgim_or_none(self) -> torch.Tensor | None:
        return None

    def leak_seq_or_none(self) -> torch.Tensor | None:
        return None

    def _check_input(self, x_seq: torch.Tensor) -> None:
        if not isinstance(x_seq, torch.Tensor) or x_seq.dim() < 2:
            shape = tuple(x_seq.shape) if isinstance(x_seq, torch.Tensor) else type(x_seq).__name__
            raise ValueError(f"x_seq must be a tensor [T, B, ...] with at least 2 dims, got {shape}")
        if x_seq.shape[0] != self.T:
            raise ValueError(f"x_seq has {x_seq.shape[0]} time steps on dim 0 but the neuron has T={self.T}")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq [T, B, ...]`` input currents -> ``[T, B, ...]`` spikes in ``{0, θ, …, Lθ}``."""
        self._check_input(x_seq)
        leak_seq = self.leak_seq_or_none()
        if leak_seq is not None and leak_seq.device != x_seq.device:
            leak_seq = leak_seq.to(x_seq.device)
        backend = get_backend(self.backend)
        spikes, _ = backend(x_seq, self.params, self.tgim_or_none(), leak_seq, self.surrogate)
        return spikes

    def extra_repr(self) -> str:
        return (f"L={self.L}, T={self.T}, threshold={self.threshold:g}, v_init={self.v_init:g}, "
                f"surrogate={self.surrogate.name}")


class LMHTNeuron(_MultiStepNeuron):
    r"""Learnable Multi-hierarchical Threshold neuron (multi-step only).

    For ``t = 1..T`` (Eqs. 5-9), with Ω the T-GIM and λ the leak::

        I_t = Σ_j Ω[t, j] x_j;   v_t = λ v_{t-1} + I_t;   s_t = fl(kθ), k = max{k ≤ L : v_t ≥ fl(kθ)};
        v_t -= s_t

    ``v_0 = v_init · θ``. STBP: ``v_{t-1}`` and the reset are detached; surrogate ``ds/dv`` is 1 on
    ``[0.5θ, (L+0.5)θ]`` by default; gradients reach Ω and λ. Because Ω mixes all steps (it is not
    causal), the neuron exists only in multi-step form.

    T-GIM parametrization (``tgim_param``):
        ``"sigmoid"`` (default, the paper's Sec. 4.3 and the authors' code): ``Ω[t, j] = (2/T)·σ(ω[t, j])``,
        bounded in ``(0, 2/T)``; weight decay pulls ω to 0, i.e. Ω to uniform. ``"uniform"`` is ω = 0
        (Ω = 1/T exactly); ``"random"`` draws ω ~ N(0, 1) (from the global RNG); ``"identity"`` cannot be
        represented for T ≥ 2 and raises ``ValueError``.
        ``"direct"`` (our variant): Ω is the parameter itself, so every init is exact — ``"uniform"``
        exactly 1/T, ``"identity"`` exactly I (no mixing), ``"random"`` a random row-stochastic matrix
        (rows sum to 1, so the mean current is kept). Unbounded: weight decay pulls Ω towards 0.
    Leak: learnable ``λ = σ(a) + 0.5 ∈ (0.5, 1.5)`` as in the reference, ``a = 0`` (λ = 1) by default
    (``leak_init`` must lie in that open interval), or a fixed float when ``learn_leak=False``.

    Args:
        L: number of threshold levels (≥ 1). T: time steps (≥ 1). threshold: θ > 0.
        v_init: initial membrane as a fraction of θ. tgim_init: one of ``TGIM_INITS``.
        learn_tgim / learn_leak: make Ω / λ parameters (else buffers). leak_init: initial λ.
        surrogate: registry name (``lmht.surrogate``). tgim_param: one of ``TGIM_PARAMS``.
        backend: kernel backend name (``lmht.kernels``), None for the default (``auto``).
    Shapes:
        ``x_seq [T, B, ...] -> [T, B, ...]`` (any trailing shape, including none).
    """

    def __init__(
        self,
        L: int,
        T: int,
        threshold: float = 1.0,
        v_init: float = 0.0,
        tgim_init: str = "uniform",
        learn_tgim: bool = True,
        leak_init: float = 1.0,
        learn_leak: bool = True,
        surrogate: str = "rectangle",
        tgim_param: str = "sigmoid",
        backend: str | None = None,
    ):
        super().__init__(T, threshold, v_init, surrogate, backend)
        self.L = _check_positive_int("L", L)
        if tgim_init not in TGIM_INITS:
            raise ValueError(f"tgim_init must be one of {TGIM_INITS}, got {tgim_init!r}")
        if tgim_param not in TGIM_PARAMS:
            raise ValueError(f"tgim_param must be one of {TGIM_PARAMS}, got {tgim_param!r}")
        self.tgim_init, self.tgim_param = tgim_init, tgim_param
        raw = self._initial_tgim_raw(tgim_init, tgim_param, T)
        if learn_tgim:
            self.tgim_raw = nn.Parameter(raw)
        else:
            self.register_buffer("tgim_raw", raw)
        # Skip the matmul entirely when the T-GIM is a fixed identity (M-HT without T-GIM).
        self._tgim_is_fixed_identity = (not learn_tgim) and tgim_param == "direct" and tgim_init == "identity"

        leak_init = float(leak_init)
        if learn_leak:
            if not 0.5 < leak_init < 1.5:
                raise ValueError(f"leak_init must lie in (0.5, 1.5) when learn_leak=True, got {leak_init}")
            self.leak_raw = nn.Parameter(torch.tensor(math.log((leak_init - 0.5) / (1.5 - leak_init))))
        else:
            if not math.isfinite(leak_init) or leak_init <= 0:
                raise ValueError(f"leak_init must be a finite number > 0, got {leak_init}")
            self.register_buffer("leak_raw", torch.tensor(leak_init))
        self.learn_leak = learn_leak
        self._leak_is_fixed_one = (not learn_leak) and leak_init == 1.0

    @staticmethod
    def _initial_tgim_raw(init: str, param: str, T: int) -> torch.Tensor:
        if param == "sigmoid":
            if init == "identity" and T > 1:
                raise ValueError("tgim_init='identity' cannot be represented by the default "
                                 "tgim_param='sigmoid' (Ω = 2σ(ω)/T lies in (0, 2/T)) for T >= 2; pass "
                                 "tgim_param='direct' explicitly (our unbounded variant) to start from the "
                                 "identity")
            return torch.randn(T, T) if init == "random" else torch.zeros(T, T)
        if init == "uniform":
            return torch.full((T, T), 1.0 / T)
        if init == "identity":
            return torch.eye(T)
        rows = torch.rand(T, T) + 0.05
        return rows / rows.sum(1, keepdim=True)

    @_MultiStepNeuron.T.setter
    def T(self, value: int) -> None:
        if value != self._T:
            raise ValueError(f"T: an LM-HT neuron's T-GIM is {self._T}x{self._T}; "
                             f"it cannot run {value} steps")

    @property
    def tgim(self) -> torch.Tensor:
        """Ω, ``[T, T]``: row t holds the weights of every step's input in step t's current."""
        if self.tgim_param == "sigmoid":
            return (2.0 / self.T) * torch.sigmoid(self.tgim_raw)
        return self.tgim_raw

    @property
    def leak(self) -> torch.Tensor:
        """λ, a 0-dim tensor."""
        return torch.sigmoid(self.leak_raw) + 0.5 if self.learn_leak else self.leak_raw

    def tgim_or_none(self):
        return None if self._tgim_is_fixed_identity else self.tgim

    def leak_seq_or_none(self):
        return None if self._leak_is_fixed_one else self.leak.expand(self.T)

    def to_single_threshold(self) -> SingleThresholdNeuron:
        """Reparameterize to a single-threshold neuron over T·L steps (Sec. 4.4).

        Ω is expanded to ``TL × TL`` by copying each ``Ω[t, j]`` into an ``L × L`` block divided by L;
        the leak λ applies at the first sub-step of each window (1 elsewhere); θ and v_init unchanged.
        Then ``single((x_seq / L).repeat_interleave(L, 0))`` summed over each window of L steps equals
        ``self(x_seq)`` exactly while currents are non-negative (Theorem 4.2), for learned Ω and λ.
        """
        steps, levels = self.T, self.L
        with torch.no_grad():
            omega = self.tgim.detach().clone()
            expanded = torch.kron(omega, torch.ones(levels, levels, dtype=omega.dtype, device=omega.device))
            expanded = expanded / levels
            schedule = torch.ones(steps * levels, dtype=omega.dtype, device=omega.device)
            schedule[::levels] = self.leak.detach()
        return SingleThresholdNeuron(steps * levels, self.threshold, self.v_init, tgim=expanded,
                                     leak_schedule=schedule, surrogate=self.surrogate, backend=self.backend)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tgim_init={self.tgim_init}, tgim_param={self.tgim_param}"


class IFNeuron(_MultiStepNeuron):
    r"""Integrate-and-fire neuron with soft reset (``leak < 1``: LIF), multi-step.

    ``v_t = λ v_{t-1} + x_t;  s_t = θ·H(v_t − θ);  v_t ← v_t − s_t`` with ``v_0 = v_init · θ``; the
    same update as ``LMHTNeuron`` with L = 1, identity T-GIM and fixed λ. Spikes are ``{0, θ}``;
    surrogate ``ds/dv`` 1 on ``[0.5θ, 1.5θ]`` (``rectangle``). ``T`` may be reassigned (no T-GIM), e.g.
    to evaluate a converted network at many steps.

    Gradients (``gradient``, one of ``IF_GRADIENTS``):
        ``"bptt"`` (default, the authors' ``IFNeuron``): nothing is detached — gradients flow through
        the membrane recurrence and through the soft reset, whose spike carries its surrogate
        gradient: ``dL/dv_t = g_t σ'(v_t) + λ dL/dv_{t+1} (1 − σ'(v_t))`` (pre-reset ``v_t``).
        ``"detached"`` (our variant): ``v_{t-1}`` and the reset are detached, as in LM-HT's STBP.

    Args:
        T: time steps. threshold: θ > 0. v_init: initial membrane as a fraction of θ.
        leak: fixed λ > 0 (1: IF). surrogate: registry name. gradient: ``"bptt"`` or ``"detached"``.
        backend: kernel backend name (``lmht.kernels``), None for the default.
    Shapes: ``x_seq [T, B, ...] -> [T, B, ...]``.
    """

    L = 1

    def __init__(self, T: int, threshold: float = 1.0, v_init: float = 0.0, leak: float = 1.0,
                 surrogate: str = "rectangle", gradient: str = "bptt", backend: str | None = None):
        super().__init__(T, threshold, v_init, surrogate, backend)
        leak = float(leak)
        if not math.isfinite(leak) or leak <= 0:
            raise ValueError(f"leak must be a finite number > 0, got {leak}")
        if gradient not in IF_GRADIENTS:
            raise ValueError(f"gradient must be one of {IF_GRADIENTS}, got {gradient!r}")
        self.leak = leak
        self.gradient = gradient
        self.bptt = gradient == "bptt"

    def leak_seq_or_none(self):
        if self.leak == 1.0:
            return None
        return torch.full((self.T,), self.leak)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, leak={self.leak:g}, gradient={self.gradient}"


class SingleThresholdNeuron(IFNeuron):
    """Single-threshold neuron over ``T`` (= T_lmht · L) steps with a fixed T-GIM and leak schedule.

    Produced by ``LMHTNeuron.to_single_threshold()``; spikes ``{0, θ}``. Its gradients are LM-HT's
    (``gradient="detached"``) unless asked otherwise.

    Args:
        tgim: ``[T, T]`` fixed mixing matrix. leak_schedule: ``[T]`` leak per step.
    """

    def __init__(self, T: int, threshold: float, v_init: float, tgim: torch.Tensor,
                 leak_schedule: torch.Tensor, surrogate: str = "rectangle", gradient: str = "detached",
                 backend: str | None = None):
        super().__init__(T, threshold, v_init, 1.0, surrogate, gradient, backend)
        if tgim.shape != (T, T) or leak_schedule.shape != (T,):
            raise ValueError(f"tgim must be [{T}, {T}] and leak_schedule [{T}], got "
                             f"{tuple(tgim.shape)} and {tuple(leak_schedule.shape)}")
        self.register_buffer("tgim", tgim)
        self.register_buffer("leak_schedule", leak_schedule)

    @_MultiStepNeuron.T.setter
    def T(self, value: int) -> None:
        if value != self._T:
            raise ValueError(f"T: this neuron's T-GIM is {self._T}x{self._T}; it cannot run {value} steps")

    def tgim_or_none(self):
        return self.tgim

    def leak_seq_or_none(self):
        return self.leak_schedule


class QCFS(nn.Module):
    """Quantization-clip-floor-shift activation with a learnable threshold ϑ (ANN side, any shape).

    ``QCFS_{Q,ϑ}(x) = (ϑ/Q) · clamp(⌊x·Q/ϑ + 0.5⌋, 0, Q)`` (Eq. 11), straight-through floor.

    Args:
        levels: Q ≥ 1. threshold: initial ϑ > 0 (reference: 8.0).
    """

    def __init__(self, levels: int, threshold: float = 8.0):
        super().__init__()
        self.levels = _check_positive_int("levels", levels)
        self.threshold = nn.Parameter(torch.tensor(_check_threshold(threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return qcfs(x, self.levels, self.threshold)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={self.threshold.item():g}"


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------
_NEURONS: dict[str, Callable[..., nn.Module]] = {}


def register_neuron(name: str):
    def decorator(factory):
        _NEURONS[name] = factory
        return factory
    return decorator


def list_neurons() -> list[str]:
    return sorted(_NEURONS)


def create_neuron(name: str, *, L: int = 1, T: int, threshold: float | None = None, **kwargs) -> nn.Module:
    """Build a multi-step neuron by name with the paper's defaults.

    ``lmht``/``mht``: θ = 2/L by default (max per-step output 2, the reference's direct training);
    ``mht`` has no T-GIM (a fixed identity, never multiplied) and a fixed λ = 1.
    ``if``/``lif``: θ = 1, and L must be 1 (``lif`` leak 0.5 by default, i.e. τ = 2); full BPTT unless
    ``gradient="detached"``. Other keywords go to the neuron's constructor.
    """
    try:
        factory = _NEURONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"neuron: unknown name {name!r}; expected one of {list_neurons()}") from None
    return factory(L=L, T=T, threshold=threshold, **kwargs)


@register_neuron("lmht")
def _lmht(L, T, threshold=None, **kwargs):
    _check_positive_int("L", L)
    return LMHTNeuron(L, T, threshold=2.0 / L if threshold is None else threshold, **kwargs)


@register_neuron("mht")
def _mht(L, T, threshold=None, **kwargs):
    _check_positive_int("L", L)
    for fixed in ("tgim_init", "tgim_param", "learn_tgim", "learn_leak"):
        if fixed in kwargs:
            raise ValueError(f"{fixed}: the 'mht' neuron has no T-GIM or learnable leak; use 'lmht'")
    return LMHTNeuron(L, T, threshold=2.0 / L if threshold is None else threshold, tgim_init="identity",
                      tgim_param="direct", learn_tgim=False, learn_leak=False, **kwargs)


def _single_level(name: str, L: int, kwargs: dict) -> None:
    if L != 1:
        raise ValueError(f"L: the {name!r} neuron has a single threshold level, got L={L}")
    if kwargs.pop("tgim_init", None) not in (None, "identity"):
        raise ValueError(f"tgim_init: the {name!r} neuron has no T-GIM")


@register_neuron("if")
def _if(L, T, threshold=None, **kwargs):
    _single_level("if", L, kwargs)
    return IFNeuron(T, threshold=1.0 if threshold is None else threshold, **kwargs)


@register_neuron("lif")
def _lif(L, T, threshold=None, leak=0.5, **kwargs):
    _single_level("lif", L, kwargs)
    return IFNeuron(T, threshold=1.0 if threshold is None else threshold, leak=leak, **kwargs)
