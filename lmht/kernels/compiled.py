"""``compile`` backend: the fused multi-step neuron compiled by ``torch.compile`` (inductor).

The forward and the backward pass of the ``torch`` backend (``lmht.kernels.fused``) are written here as
pure tensor functions (no ``out=``, no in-place ops) over ``x [T, N]`` and compiled with
``fullgraph=True``. Inductor turns the unrolled T-step recurrence (Eqs. 5-8)::

    I = Ω x;   u_t = λ_t v_{t-1} + I_t;   s_t = staircase(u_t);   v_t = u_t − s_t

into one loop over neurons that keeps ``v`` in registers and touches memory once per input and
output row; Ω stays a matmul (the same BLAS / cuBLAS call as the plain path). The memory strategy is
the ``torch`` backend's: save the input and the spikes only, recompute the membranes in backward
(STBP: one sweep; BPTT: the recomputed ``u_t`` feed a reverse-time sweep
``dL/du_t = c_t + (g_t − c_t) σ'(u_t)``, ``c_t = λ_{t+1} dL/du_{t+1}``).

Exactness (spikes equal the plain path bit for bit):
* ``staircase``: the ops of ``lmht.functional.staircase`` with the constants of ``fire_constants``
  (Python floats exact in the dtype): clamp, scaled floor (and, when no multiplier is exact at every
  boundary, one comparison with ``fl((k̂+1)·θ)``). No division, so inductor's rewrites of ``/`` do
  not apply.
* ``λ v + I``: ATen's ``addcmul`` rounds once (fused multiply-add, CPU and CUDA) while ``v - s`` and
  ``(k̂+1)·θ`` round on their own. On CUDA inductor emits an explicit FMA for the first and the Triton
  kernels are built without contraction (``emulate_precision_casts``); on CPU (no contraction by
  default) the float32 charge is summed in float64, where the product is exact. float64 inputs on CPU
  are not covered (their charge rounds twice, so membranes may differ from the plain path in the
  last bit).

Graphs are specialised on everything but the neuron count: (T, L, θ, v_init, BPTT, which of Ω and λ
exist, dtype, device) for the forward, plus the surrogate and the needed gradients for the backward.
``N`` is dynamic, so every layer of a network shares one graph. Each specialisation gets its own
code object, so dynamo's per-function recompile limit never sends a combination back to eager
silently. First use of a specialisation compiles it (seconds; cached on disk by inductor).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import NamedTuple

import torch

from lmht.functional import FireConstants, NeuronParams, fire_constants, staircase_from_constants
from lmht.kernels.layout import apply_outside_autocast, as_rows, finish_forward, from_rows, rows_in
from lmht.surrogate import Surrogate

__all__ = ["clear_cache", "compiled_specialisations", "lmht_compiled"]


class _Spec(NamedTuple):
    """What a compiled forward graph is specialised on."""

    steps: int
    levels: int
    threshold: float  # θ as given (the surrogate's window is computed from it, as in the plain path)
    fire: FireConstants  # θ, fl(Lθ), the floor's multiplier, in this dtype
    v_start: float  # v_0 = v_init · θ
    bptt: bool
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
    steps, levels, fire, v_start = spec.steps, spec.levels, spec.fire, spec.v_start
    has_tgim, has_leak = spec.has_tgim, spec.has_leak

    def lmht_forward(x, tgim, leak):
        currents = torch.mm(tgim, x) if has_tgim else x
        v = torch.full_like(x[0], v_start)
        spikes = []
        for t in range(steps):
            v = _charge(currents[t], v, leak[t] if has_leak else None, spec)
            s = staircase_from_constants(v, fire, levels)
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
        membranes, befores = [], []  # u_t and v_{t-1}
        for t in range(steps):
            v = _charge(currents[t], v_prev, leak[t] if has_leak else None, fwd)
            membranes.append(v)
            befores.append(v_prev)
            v_prev = v - spikes[t]
        grad_currents = [None] * steps
        carry = None  # dL/dv_t through the recurrence (BPTT); the final membrane is unused
        for t in reversed(range(steps)) if fwd.bptt else range(steps):
            slope = surrogate.grad(membranes[t], threshold, levels)
            if carry is None:
                grad_currents[t] = grad[t] * slope
            else:
                grad_currents[t] = torch.lerp(carry, grad[t], slope)  # c + σ'(g − c); exact for 0/1
            if fwd.bptt:
                carry = grad_currents[t] * leak[t] if has_leak else grad_currents[t]
        grad_current = torch.stack(grad_currents)
        grad_x = grad_tgim = grad_leak = None
        if need_x:
            grad_x = torch.mm(tgim.t(), grad_current) if has_tgim else grad_current
        if need_tgim:
            grad_tgim = torch.mm(grad_current, x.t())
        if need_leak:
            grad_leak = torch.stack([torch.sum(g * v) for g, v in zip(grad_currents, befores, strict=True)])
        return grad_x, grad_tgim, grad_leak

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
        fire = fire_constants(params.threshold, params.levels, x.dtype)
        spec = _Spec(steps, params.levels, params.threshold, fire, params.v_init * params.threshold,
                     params.bptt, tgim is not None, leak_seq is not None, x.dtype, x.device.type)
        mix = None if tgim is None else tgim.to(x.dtype)
        leak = None if leak_seq is None else leak_seq.to(x.dtype)
        _neurons_dynamic(x)
        # the forward pass is the same under STBP and BPTT: one graph for both
        forward = _graph("forward", spec._replace(bptt=False), _make_forward, x.device.type)
        spikes, v_last = forward(x, mix, leak)
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

