"""``triton`` backend: the multi-step neuron as two Triton kernels (CUDA).

One program owns a block of ``BLOCK`` neurons and runs all T steps of LM-HT (Eqs. 5-8) on it with the
membrane in registers::

    u_t = λ_t v_{t-1} + I_t;   s_t = staircase(u_t);   v_t = u_t − s_t

so each input row is read once and each spike row written once; the L levels cost a clamp and a scaled
floor (plus one boundary comparison for the few θ without an exact multiplier;
``lmht.functional.staircase``). The T-GIM is a matmul over time,
done by cuBLAS before the forward kernel (``I = Ω x``, written into the spike buffer, which the kernel
then overwrites in place) and around the backward kernel. The backward pass recomputes the membranes
from the saved input and spikes (nothing else is saved, as in the ``torch`` backend): it recomputes
``I = Ω x`` into one ``[T, N]`` buffer, the kernel overwrites it with ``dL/dI`` and per-block partial
sums of ``dL/dλ_t``, and two matmuls give ``dL/dx = Ωᵀ dL/dI`` and ``dL/dΩ = dL/dI xᵀ``. Under BPTT
the kernel first overwrites the buffer with the recomputed ``u_t``, then walks back in time:
``dL/du_t = c_t + (g_t − c_t) σ'(u_t)``, ``c_t = λ_{t+1} dL/du_{t+1}``.

Exactness: ``λ v + I`` is one FMA, like ATen's ``addcmul`` on CUDA; the staircase uses the constants of
``lmht.functional.fire_constants`` (exact in float32), and the kernels are built without FMA
contraction elsewhere; window bounds and ``v_0`` are rounded to float32 as ATen rounds Python scalars.
So the spikes equal the plain path's bit for bit; gradients agree to float round-off (different
summation order).

Scope: float32 CUDA tensors (autocast is switched off around the neuron, like the ``torch``
backend), surrogates ``rectangle``, ``triangle`` and ``sigmoid``; ``runs_here`` says whether a call
is in scope, and ``lmht.kernels`` sends the others to the ``torch`` backend. ``TRITON_INTERPRET=1``
runs the same kernels on CPU tensors through Triton's interpreter (numpy; the tests use it): there the
FMA is emulated in float64.
"""

from __future__ import annotations

import os
from typing import Optional

import torch

from lmht.functional import NeuronParams, fire_constants
from lmht.kernels.layout import as_rows, finish_forward, from_rows, rows_in
from lmht.surrogate import Surrogate

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton is an optional dependency
    triton = None

__all__ = ["AVAILABLE", "BLOCK", "INTERPRET", "SURROGATES", "lmht_triton", "runs_here"]

#: neurons per program; 4 warps → 8 neurons per thread, 16-byte vector loads
BLOCK = 1024
NUM_WARPS = 4
#: surrogate name -> kernel code (the formulas of lmht.surrogate, re-implemented in ``_slope``); to add
#: one, give it the next code here and a branch in ``_slope``
SURROGATES = {"rectangle": 0, "triangle": 1, "sigmoid": 2}
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
#: triton importable and a device to run it on (CUDA, or CPU through the interpreter)
AVAILABLE = triton is not None and (torch.cuda.is_available() or INTERPRET)


if triton is not None:

    @triton.jit
    def _charge(current, v, leak, HAS_LEAK: tl.constexpr, FMA_F64: tl.constexpr):
        """``λ v + I`` rounded once (ATen's addcmul), or ``I + v`` without leak."""
        if HAS_LEAK:
            if FMA_F64:  # interpreter: numpy has no FMA; the float64 result rounds like one
                v = (v.to(tl.float64) * leak.to(tl.float64) + current.to(tl.float64)).to(tl.float32)
            else:
                v = tl.fma(v, leak, current)
        else:
            v = current + v
        return v

    @triton.jit
    def _fire(v, threshold, top, inverse, top_scaled, UNIT: tl.constexpr, UNIT_THRESHOLD: tl.constexpr,
              EXACT: tl.constexpr):
        """``lmht.functional.staircase_from_constants`` op for op (``UNIT``: multiplier 1;
        ``UNIT_THRESHOLD``: θ = 1; ``EXACT``: the multiplier is exact at every boundary)."""
        if EXACT:
            scaled = v
            if not UNIT:
                scaled = v * inverse
            q = tl.floor(tl.minimum(tl.maximum(scaled, 0.0), top_scaled))
        else:  # the estimate is the level or one below it
            clipped = tl.minimum(tl.maximum(v, 0.0), top)
            q = tl.floor(clipped * inverse)
            q = q + (clipped >= (q + 1.0) * threshold).to(tl.float32)
        if not UNIT_THRESHOLD:
            q = q * threshold
        return q

    @triton.jit
    def _slope(v, threshold, levels, lo, hi, SURROGATE: tl.constexpr):
        """The surrogate ``ds/dv`` (``SURROGATES``)."""
        if SURROGATE == 0:  # rectangle: 1 on [θ/2, (L + 1/2)θ]
            slope = ((v >= lo) & (v <= hi)).to(tl.float32)
        else:
            u = v / threshold
            nearest = tl.minimum(tl.maximum(tl.floor(u + 0.5), 1.0), levels)
            if SURROGATE == 1:  # triangle: a tent of height 2 on each level centre
                slope = 2.0 * tl.maximum(1.0 - 2.0 * tl.abs(u - nearest), 0.0)
            else:  # sigmoid, α = 4 (lmht.surrogate._sigmoid)
                sig = tl.sigmoid(4.0 * (u - nearest))
                slope = 4.0 * sig * (1.0 - sig)
        return slope

    @triton.jit
    def _lmht_forward_kernel(
        I, S, V, LEAK, n, stride_i, steps, threshold, top, inverse, top_scaled, v_start,
        HAS_LEAK: tl.constexpr, UNIT: tl.constexpr, UNIT_THRESHOLD: tl.constexpr, EXACT: tl.constexpr,
        FMA_F64: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        """Spikes ``S [T, n]`` and final membrane ``V [n]`` from currents ``I`` (row stride
        ``stride_i``; may be ``S`` itself: row t is read before it is overwritten)."""
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        v = tl.zeros([BLOCK], dtype=tl.float32) + v_start
        i_ptrs = I + offs
        s_ptrs = S + offs
        for t in range(steps):
            current = tl.load(i_ptrs, mask=mask, other=0.0)
            leak = 1.0
            if HAS_LEAK:
                leak = tl.load(LEAK + t)
            v = _charge(current, v, leak, HAS_LEAK, FMA_F64)
            s = _fire(v, threshold, top, inverse, top_scaled, UNIT, UNIT_THRESHOLD, EXACT)
            tl.store(s_ptrs, s, mask=mask)
            v = v - s
            i_ptrs += stride_i
            s_ptrs += n
        tl.store(V + offs, v, mask=mask)

    @triton.jit
    def _lmht_backward_kernel(
        I, S, G, GI, LEAK, LEAK_PARTS, n, stride_i, steps, threshold, levels, v_start, lo, hi,
        HAS_LEAK: tl.constexpr, NEED_LEAK: tl.constexpr, BPTT: tl.constexpr, SURROGATE: tl.constexpr,
        FMA_F64: tl.constexpr, BLOCK: tl.constexpr,
    ):
        """``GI = dL/dI [T, n]`` (may be ``I`` itself) and ``LEAK_PARTS[program, t]`` = this block's
        part of ``dL/dλ_t = Σ dL/dI_t · v_{t-1}``, recomputing ``v`` from ``I`` and the spikes ``S``."""
        pid = tl.program_id(0)
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        v_prev = tl.zeros([BLOCK], dtype=tl.float32) + v_start
        i_ptrs = I + offs
        s_ptrs = S + offs
        g_ptrs = G + offs
        gi_ptrs = GI + offs
        if BPTT:
            # sweep 1: u_t into GI (row t of I is read before it is overwritten when GI is I)
            for t in range(steps):
                current = tl.load(i_ptrs, mask=mask, other=0.0)
                leak = 1.0
                if HAS_LEAK:
                    leak = tl.load(LEAK + t)
                u = _charge(current, v_prev, leak, HAS_LEAK, FMA_F64)
                tl.store(gi_ptrs, u, mask=mask)
                v_prev = u - tl.load(s_ptrs, mask=mask, other=0.0)
                i_ptrs += stride_i
                s_ptrs += n
                g_ptrs += n
                gi_ptrs += n
            # sweep 2, back in time: dL/du_t = c + (g_t - c) σ'(u_t), c = λ_{t+1} dL/du_{t+1}
            carry = tl.zeros([BLOCK], dtype=tl.float32)
            for step in range(steps):
                t = steps - 1 - step
                s_ptrs -= n
                g_ptrs -= n
                gi_ptrs -= n
                u = tl.load(gi_ptrs, mask=mask, other=0.0)
                g = tl.load(g_ptrs, mask=mask, other=0.0)
                slope = _slope(u, threshold, levels, lo, hi, SURROGATE)
                if SURROGATE == 0:  # a 0/1 window: select g or c exactly
                    grad_u = tl.where(slope > 0.0, g, carry)
                else:
                    grad_u = carry + (g - carry) * slope
                if NEED_LEAK:  # v_{t-1} = u_{t-1} - s_{t-1}: row t-1 of GI still holds u_{t-1}
                    earlier = mask & (t > 0)
                    u_before = tl.load(gi_ptrs - n, mask=earlier, other=0.0)
                    v_before = u_before - tl.load(s_ptrs - n, mask=earlier, other=0.0)
                    v_before = tl.where(t > 0, v_before, v_start)
                    tl.store(LEAK_PARTS + pid * steps + t, tl.sum(grad_u * v_before, axis=0))
                tl.store(gi_ptrs, grad_u, mask=mask)
                if HAS_LEAK:
                    carry = grad_u * tl.load(LEAK + t)
                else:
                    carry = grad_u
        else:
            for t in range(steps):
                current = tl.load(i_ptrs, mask=mask, other=0.0)
                leak = 1.0
                if HAS_LEAK:
                    leak = tl.load(LEAK + t)
                v = _charge(current, v_prev, leak, HAS_LEAK, FMA_F64)
                g = tl.load(g_ptrs, mask=mask, other=0.0)
                grad_current = g * _slope(v, threshold, levels, lo, hi, SURROGATE)
                tl.store(gi_ptrs, grad_current, mask=mask)
                if NEED_LEAK:
                    tl.store(LEAK_PARTS + pid * steps + t, tl.sum(grad_current * v_prev, axis=0))
                s = tl.load(s_ptrs, mask=mask, other=0.0)
                v_prev = v - s
                i_ptrs += stride_i
                s_ptrs += n
                g_ptrs += n
                gi_ptrs += n


def _launch_options() -> dict:
    # without fusion the compiler keeps every other mul/add separately rounded, like ATen
    return {} if INTERPRET else {"num_warps": NUM_WARPS, "enable_fp_fusion": False}


def _forward(x: torch.Tensor, mix: Optional[torch.Tensor], leak: Optional[torch.Tensor], levels: int,  # noqa: UP045
             threshold: float, v_init: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``x [T, N]`` (unit inner stride) -> spikes ``[T, N]`` and the final membrane ``[N]``."""
    steps, n = x.shape
    if mix is None:
        currents, spikes = x, torch.empty((steps, n), dtype=x.dtype, device=x.device)
    else:
        currents = spikes = torch.mm(mix, x)  # overwritten in place by the spikes
    v_last = torch.empty((n,), dtype=x.dtype, device=x.device)
    c = fire_constants(threshold, levels, x.dtype)
    _lmht_forward_kernel[(triton.cdiv(n, BLOCK),)](
        currents, spikes, v_last, spikes if leak is None else leak, n, currents.stride(0), steps,
        c.threshold, c.top, c.inverse, c.top_scaled, v_init * threshold,
        HAS_LEAK=leak is not None, UNIT=c.inverse == 1.0, UNIT_THRESHOLD=c.threshold == 1.0, EXACT=c.exact,
        FMA_F64=INTERPRET,
        BLOCK=BLOCK, **_launch_options())
    return spikes, v_last


def _backward(x: torch.Tensor, mix: Optional[torch.Tensor], leak: Optional[torch.Tensor],  # noqa: UP045
              spikes: torch.Tensor, grad: torch.Tensor, levels: int, threshold: float, v_init: float,
              surrogate: int, need_leak: bool, bptt: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``dL/dI [T, N]`` and the per-block parts of ``dL/dλ`` (``[blocks, T]``; empty unless ``need_leak``)."""
    steps, n = x.shape
    blocks = triton.cdiv(n, BLOCK)
    if mix is None:
        currents, grad_current = x, torch.empty((steps, n), dtype=x.dtype, device=x.device)
    else:
        currents = grad_current = torch.mm(mix, x)  # I, overwritten in place by dL/dI
    leak_parts = torch.empty((blocks if need_leak else 0, steps), dtype=x.dtype, device=x.device)
    lo, hi = Surrogate.window(threshold, levels)
    _lmht_backward_kernel[(blocks,)](
        currents, spikes, grad, grad_current, grad if leak is None else leak,
        leak_parts if need_leak else grad, n, currents.stride(0), steps, threshold, float(levels),
        v_init * threshold, lo, hi, HAS_LEAK=leak is not None, NEED_LEAK=need_leak, BPTT=bptt,
        SURROGATE=surrogate, FMA_F64=INTERPRET, BLOCK=BLOCK, **_launch_options())
    return grad_current, leak_parts


if triton is not None:
    # Custom ops, so that torch.compile treats the kernels as opaque calls of known output shapes
    # (their schemas are read from the annotations: Optional, not ``X | None``).
    _forward_op = torch.library.custom_op("lmht::triton_neuron_forward", mutates_args=())(_forward)
    _backward_op = torch.library.custom_op("lmht::triton_neuron_backward", mutates_args=())(_backward)

    @_forward_op.register_fake
    def _(x, mix, leak, levels, threshold, v_init):
        return x.new_empty(x.shape), x.new_empty(x.shape[1:])

    @_backward_op.register_fake
    def _(x, mix, leak, spikes, grad, levels, threshold, v_init, surrogate, need_leak, bptt):
        blocks = (x.shape[1] + BLOCK - 1) // BLOCK if need_leak else 0
        return x.new_empty(x.shape), x.new_empty((blocks, x.shape[0]))


class _TritonNeuron(torch.autograd.Function):
    """Autograd wrapper: Triton forward, Triton recompute-and-backward (see module docstring)."""

    @staticmethod
    def forward(ctx, x_seq, tgim, leak_seq, params: NeuronParams, surrogate: Surrogate):
        x, perm = as_rows(x_seq)
        if x.stride(1) != 1:
            x = x.contiguous()
        mix = None if tgim is None else tgim.to(x.dtype)
        leak = None if leak_seq is None else leak_seq.to(x.dtype).contiguous()
        spikes, v_last = _forward_op(x, mix, leak, params.levels, params.threshold, params.v_init)
        ctx.params, ctx.surrogate = params, surrogate
        return finish_forward(ctx, x_seq, perm, (x, mix, leak, spikes), spikes, v_last)

    @staticmethod
    def backward(ctx, grad_spikes, _grad_v):
        if grad_spikes is None:
            return None, None, None, None, None
        x, mix, leak, spikes = ctx.saved_tensors
        grad = rows_in(grad_spikes, ctx.perm).contiguous()
        need_x, need_tgim, need_leak = ctx.needs_input_grad[:3]
        params = ctx.params
        grad_current, leak_parts = _backward_op(x, mix, leak, spikes, grad, params.levels, params.threshold,
                                                params.v_init, SURROGATES[ctx.surrogate.name], need_leak,
                                                params.bptt)
        grad_x = grad_tgim = grad_leak = None
        if need_x:
            grad_x = from_rows(grad_current if mix is None else mix.t() @ grad_current, ctx.shape, ctx.perm)
        if need_tgim:
            grad_tgim = grad_current @ x.t()
        if need_leak:
            grad_leak = leak_parts.sum(0)
        return grad_x, grad_tgim, grad_leak, None, None


def runs_here(x_seq: torch.Tensor, surrogate: Surrogate | None) -> bool:
    """Whether the kernels cover this call: float32 on CUDA (any float dtype under CUDA autocast, which
    ``lmht_triton`` leaves) or the interpreter, and a surrogate of ``SURROGATES``."""
    autocast = x_seq.is_cuda and torch.is_autocast_enabled("cuda") and x_seq.is_floating_point()
    return (AVAILABLE and (x_seq.is_cuda or INTERPRET) and (x_seq.dtype == torch.float32 or autocast)
            and surrogate is not None and surrogate.name in SURROGATES)


def lmht_triton(x_seq, params: NeuronParams, tgim=None, leak_seq=None, surrogate: Surrogate | None = None):
    """Triton kernels: ``(spikes [T, ...], final membrane [...])`` for calls where ``runs_here`` holds
    (after leaving CUDA autocast: the neuron runs in float32)."""
    if x_seq.is_cuda and torch.is_autocast_enabled("cuda"):
        with torch.autocast("cuda", enabled=False):
            return lmht_triton(x_seq.float(), params, None if tgim is None else tgim.float(),
                               None if leak_seq is None else leak_seq.float(), surrogate)
    if not runs_here(x_seq, surrogate):
        raise ValueError("backend: the triton kernels need float32 CUDA tensors (or TRITON_INTERPRET=1) and "
                         f"a surrogate in {sorted(SURROGATES)}; use the registered 'triton' backend, "
                         "which sends other calls to 'torch'")
    return _TritonNeuron.apply(x_seq, tgim, leak_seq, params, surrogate)
