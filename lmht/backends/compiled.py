"""``compile`` backend: the fused multi-step neuron compiled by ``torch.compile`` (inductor).

The forward and the backward pass of ``lmht.kernels``' ``torch`` backend are written here as pure
tensor functions (no ``out=``, no in-place ops) over ``x [T, N]`` and compiled with
``fullgraph=True``. Inductor turns the unrolled T-step recurrence (Eqs. 5-8)::

    I = Ω x;   v_t = λ_t v_{t-1} + I_t;   s_t = θ clamp(⌊v_t / θ⌋, 0, L);   v_t -= s_t

into one loop over neurons that keeps ``v`` in registers and touches memory once per input and
output row; Ω stays a matmul (the same BLAS / cuBLAS call as the plain path). The memory strategy is
the ``torch`` backend's: save the input and the spikes only, recompute the membranes in backward.

Exactness (spikes equal the plain path bit for bit):
* ``⌊v/θ⌋``: inductor lowers floor-division of floats to ``floor(v / θ)``, which differs from ATen's
  (fmod-based, exact) result whenever ``v / θ`` rounds up onto an integer. Here θ = 1 uses ``floor``,
  θ = 2^k the exact ``floor(v · 2^-k)``, and any other θ replays ATen's algorithm.
* ``λ v + I``: ATen's ``addcmul`` rounds once (fused multiply-add, CPU and CUDA) while ``v - θ·q``
  rounds twice. On CUDA inductor emits an explicit FMA for the first and the Triton kernels are built
  without contraction (``emulate_precision_casts``); on CPU (no contraction by default) the float32
  charge is summed in float64, where the product is exact. float64 inputs on CPU are not covered
  (their charge rounds twice, so membranes may differ from the plain path in the last bit).

Graphs are specialised on everything but the neuron count: (T, L, θ, v_init, which of Ω and λ
exist, dtype, device) for the forward, plus the surrogate and the needed gradients for the backward.
``N`` is dynamic, so every layer of a network shares one graph. Each specialisation gets its own
code object, so dynamo's per-function recompile limit never sends a combination back to eager
silently. First use of a specialisation compiles it (seconds; cached on disk by inductor).
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import NamedTuple

import torch

from lmht.functional import NeuronParams
from lmht.kernels import apply_outside_autocast, as_rows, finish_forward, from_rows, register_backend, rows_in
from lmht.surrogate import Surrogate

__all__ = ["clear_cache", "compiled_specialisations", "lmht_compiled"]


class _Spec(NamedTuple):
    """What a compiled forward graph is specialised on."""

    steps: int
    levels: int
    threshold: float
    v_start: float  # v_0 = v_init · θ
    has_tgim: bool
    has_leak: bool
    dtype: torch.dtype
    device_type: str


class _GradSpec(NamedTuple):
    """What a compiled backward graph is specialised on."""

    forward: _Spec
    surrogate: Surrogate
    need_x: bool
    need_tgim: bool
    need_leak: bool


_GRAPHS: dict[tuple[str, tuple], Callable] = {}


def clear_cache() -> None:
    """Forget the compiled graphs (the next call recompiles; inductor's disk cache may still hit)."""
    _GRAPHS.clear()


def compiled_specialisations() -> int:
    """Number of compiled graphs (forward and backward) held."""
    return len(_GRAPHS)


# ----------------------------------------------------------------------------------------------------
# Pure maths, traced by dynamo
# ----------------------------------------------------------------------------------------------------
def _is_power_of_two(value: float) -> bool:
    return value > 0 and math.frexp(value)[0] == 0.5


def _floor_divide(v: torch.Tensor, divisor: float) -> torch.Tensor:
    """ATen's float floor-division ``div(v, θ, rounding_mode="floor")`` for θ > 0, op for op.

    ``floor((v - fmod(v, θ)) / θ)``, one lower when the remainder is negative, rounded up when the
    quotient sits more than half below the next integer; exact because ``fmod`` is.
    """
    remainder = torch.fmod(v, divisor)
    quotient = (v - remainder) / divisor
    quotient = torch.where(remainder < 0, quotient - 1.0, quotient)
    floored = torch.floor(quotient)
    return torch.where(quotient - floored > 0.5, floored + 1.0, floored)


def _staircase(v: torch.Tensor, threshold: float, levels: int) -> torch.Tensor:
    """``θ · clamp(⌊v / θ⌋, 0, L)`` (Eq. 7), equal to ``lmht.functional.staircase`` bit for bit."""
    if threshold == 1.0:
        quotient = torch.floor(v)
    elif _is_power_of_two(threshold):
        quotient = torch.floor(v * (1.0 / threshold))
    else:
        quotient = _floor_divide(v, threshold)
    spikes = torch.clamp(quotient, 0, levels)
    return spikes if threshold == 1.0 else spikes * threshold


def _charge(current: torch.Tensor, v_prev: torch.Tensor, leak: torch.Tensor | None, spec: _Spec):
    """``λ v + I`` rounded once, like ATen's ``addcmul`` (an FMA on CPU and CUDA), or ``I + v``.

    CUDA: inductor lowers ``addcmul`` to an explicit FMA. CPU: the C++ kernels are built without
    FMA contraction (contraction would also fuse ``v - θ·q``, which ATen rounds twice), so the
    float32 sum is formed in float64, where the product is exact: one rounding, like the FMA.
    """
    if leak is None:
        return current + v_prev
    if spec.device_type == "cpu" and spec.dtype == torch.float32:
        return (current.double() + v_prev.double() * leak.double()).float()
    return torch.addcmul(current, v_prev, leak)


def _make_forward(spec: _Spec):
    steps, levels, threshold, v_start = spec.steps, spec.levels, spec.threshold, spec.v_start
    has_tgim, has_leak = spec.has_tgim, spec.has_leak

    def lmht_forward(x, tgim, leak):
        currents = torch.mm(tgim, x) if has_tgim else x
        v = torch.full_like(x[0], v_start)
        spikes = []
        for t in range(steps):
            v = _charge(currents[t], v, leak[t] if has_leak else None, spec)
            s = _staircase(v, threshold, levels)
            spikes.append(s)
            v = v - s
        return torch.stack(spikes), v

    return lmht_forward


def _make_backward(spec: _GradSpec):
    fwd, surrogate = spec.forward, spec.surrogate
    steps, levels, threshold, v_start = fwd.steps, fwd.levels, fwd.threshold, fwd.v_start
    has_tgim, has_leak = fwd.has_tgim, fwd.has_leak
    need_x, need_tgim, need_leak = spec.need_x, spec.need_tgim, spec.need_leak

    def lmht_backward(x, tgim, leak, spikes, grad):
        currents = torch.mm(tgim, x) if has_tgim else x
        v_prev = torch.full_like(x[0], v_start)
        grad_currents, grad_leak = [], []
        for t in range(steps):
            v = _charge(currents[t], v_prev, leak[t] if has_leak else None, fwd)
            grad_current = grad[t] * surrogate.grad(v, threshold, levels)
            grad_currents.append(grad_current)
            if need_leak:
                grad_leak.append(torch.sum(grad_current * v_prev))
            v_prev = v - spikes[t]
        grad_current = torch.stack(grad_currents)
        grad_x = grad_tgim = None
        if need_x:
            grad_x = torch.mm(tgim.t(), grad_current) if has_tgim else grad_current
        if need_tgim:
            grad_tgim = torch.mm(grad_current, x.t())
        return grad_x, grad_tgim, torch.stack(grad_leak) if need_leak else None

    return lmht_backward


# ----------------------------------------------------------------------------------------------------
# Compilation cache
# ----------------------------------------------------------------------------------------------------
def _own_code(fn, name: str):
    """A copy of ``fn`` with its own code object, so dynamo caches and limits it separately."""
    code = fn.__code__.replace(co_name=name, co_qualname=name)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


def _options(device_type: str) -> dict:
    # GPU: no mul+add contraction in the Triton kernels (ATen rounds ``v - θ·q`` twice); the
    # explicit FMA of ``addcmul`` stays. CPU kernels are built without contraction by default.
    return {} if device_type == "cpu" else {"emulate_precision_casts": True}


def _graph(kind: str, spec: tuple, make, device_type: str) -> Callable:
    if torch.compiler.is_compiling():  # inside a compiled model: let the outer graph inline the maths
        return make(spec)
    key = (kind, spec)
    graph = _GRAPHS.get(key)
    if graph is None:
        fn = _own_code(make(spec), f"lmht_{kind}_{len(_GRAPHS)}")
        graph = torch.compile(fn, fullgraph=True, options=_options(device_type))
        _GRAPHS[key] = graph
    return graph


def _neurons_dynamic(*tensors: torch.Tensor) -> None:
    if not torch.compiler.is_compiling():
        for tensor in tensors:
            torch._dynamo.maybe_mark_dynamic(tensor, 1)


class _CompiledNeuron(torch.autograd.Function):
    """Autograd wrapper: compiled forward, compiled recompute-and-backward (see module docstring)."""

    @staticmethod
    def forward(ctx, x_seq, tgim, leak_seq, params: NeuronParams, surrogate: Surrogate):
        steps = x_seq.shape[0]
        x, perm = as_rows(x_seq)
        spec = _Spec(steps, params.levels, params.threshold, params.v_init * params.threshold,
                     tgim is not None, leak_seq is not None, x.dtype, x.device.type)
        mix = None if tgim is None else tgim.to(x.dtype)
        leak = None if leak_seq is None else leak_seq.to(x.dtype)
        _neurons_dynamic(x)
        spikes, v_last = _graph("forward", spec, _make_forward, x.device.type)(x, mix, leak)
        ctx.spec, ctx.surrogate = spec, surrogate
        return finish_forward(ctx, x_seq, perm, (x, mix, leak, spikes), spikes, v_last)

    @staticmethod
    def backward(ctx, grad_spikes, _grad_v):
        if grad_spikes is None:
            return None, None, None, None, None
        x, mix, leak, spikes = ctx.saved_tensors
        need_x, need_tgim, need_leak = ctx.needs_input_grad[:3]
        spec = _GradSpec(ctx.spec, ctx.surrogate, need_x, need_tgim, need_leak)
        grad = rows_in(grad_spikes, ctx.perm).contiguous()
        _neurons_dynamic(x, spikes, grad)
        graph = _graph("backward", spec, _make_backward, x.device.type)
        grad_x, grad_tgim, grad_leak = graph(x, mix, leak, spikes, grad)
        grad_x = None if grad_x is None else from_rows(grad_x, ctx.shape, ctx.perm)
        return grad_x, grad_tgim, grad_leak, None, None


def lmht_compiled(x_seq, params: NeuronParams, tgim=None, leak_seq=None, surrogate: Surrogate | None = None):
    """``compile`` backend: ``(spikes [T, ...], final membrane [...])``; see the module docstring."""
    if surrogate is None:
        raise ValueError("surrogate: the compile backend needs a Surrogate (lmht.surrogate.create_surrogate)")
    return apply_outside_autocast(_CompiledNeuron, x_seq, tgim, leak_seq, params, surrogate)


register_backend("compile", lmht_compiled)
