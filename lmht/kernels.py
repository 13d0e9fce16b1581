"""Fused multi-step neuron kernels and the backend registry.

A backend computes the whole multi-step neuron of ``lmht.functional`` in one call:

    backend(x_seq, params, tgim, leak_seq, surrogate) -> (spikes [T, ...], final membrane [...])

``plain``  the per-step autograd graph of ``lmht.functional.lmht_multistep_plain`` (the reference).
``torch``  one ``autograd.Function`` over the whole time loop (default): T-GIM as a single matmul over
           time, multi-level firing as one floor (no per-level passes), membrane updated in place, no
           autograd graph per step, neurons processed in cache-sized chunks, nothing saved but the
           input and the spikes. Values and gradients equal the plain path's.

Optional backends live in ``lmht.backends`` and register themselves at import (end of this module):
``compile`` (torch.compile / inductor, any device) and ``triton`` (CUDA + triton only).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from lmht.functional import NeuronParams, lmht_multistep_plain, staircase
from lmht.surrogate import Surrogate

__all__ = [
    "apply_outside_autocast",
    "as_rows",
    "finish_forward",
    "from_rows",
    "get_backend",
    "list_backends",
    "lmht_fused",
    "register_backend",
    "rows_in",
    "set_default_backend",
]

Backend = Callable[..., tuple[torch.Tensor, torch.Tensor]]
_BACKENDS: dict[str, Backend] = {}
_DEFAULT = ["torch"]


def register_backend(name: str, fn: Backend) -> Backend:
    _BACKENDS[name] = fn
    return fn


def list_backends() -> list[str]:
    return sorted(_BACKENDS)


def get_backend(name: str | None = None) -> Backend:
    """The backend registered as ``name`` (None: the current default, ``torch`` unless changed)."""
    key = _DEFAULT[0] if name is None else name
    try:
        return _BACKENDS[key]
    except KeyError:
        raise ValueError(f"backend: unknown or unavailable {key!r}; available: {list_backends()}") from None


def set_default_backend(name: str) -> None:
    """Make ``name`` the backend of every neuron built without an explicit ``backend``."""
    get_backend(name)
    _DEFAULT[0] = name


#: Neurons per chunk of the fused kernel on CPU: the whole time loop runs on one chunk before the
#: next, so a step's operands stay in cache, and the backward pass's ``dL/dI`` buffer is
#: ``[T, chunk]``, not ``[T, N]``. 2^16 float32 = 256 KiB per row (two 32768-element grains, so ATen
#: can still split each op over two threads); a multiple of 64, the column blocking of BLAS, so the
#: chunked ``Ω x`` equals one matmul bit for bit.
CHUNK = 1 << 16
#: The same on GPUs, where every op is a kernel launch: chunks only bound the buffer on huge layers.
CUDA_CHUNK = 1 << 22


def _chunk_size(x: torch.Tensor) -> int:
    return min(x.shape[1], CUDA_CHUNK if x.is_cuda else CHUNK)


class _FusedNeuron(torch.autograd.Function):
    """Whole-sequence LM-HT neuron that saves nothing but its input and its output.

    Both are alive anyway (the next layer saves the spikes, Ω needs x), so the neuron adds no
    activation memory. The backward pass re-runs the cheap recurrence from them: with the spikes
    known, ``v_pre_t = λ_t v_{t-1} + I_t`` and ``v_t = v_pre_t − s_t`` are two ops a step (no floor),
    with the same ops as the forward pass, so the recomputed membranes are bitwise identical.

    Both passes walk the neurons in chunks of ``CHUNK`` and run all T steps on a chunk before the
    next (the chunk's operands stay in cache). The forward pass writes the mixed currents of a chunk
    into the output buffer (row t is read before s_t lands); the backward pass recomputes them into a
    ``[T, CHUNK]`` buffer, overwrites them with ``dL/dI`` and applies Ωᵀ into the ``dL/dx`` output, so
    beyond its output the backward pass allocates only chunk-sized buffers. The rectangular
    surrogate's window is a clamp and an equality test into a float mask (no ``where`` or bool
    masks: their per-element branches are 5-20× slower on CPU); the gradient of the unused final
    membrane is never materialized; a step expanded over T (direct encoding) is staged per chunk
    for BLAS.
    """

    @staticmethod
    def forward(ctx, x_seq, tgim, leak_seq, params: NeuronParams, surrogate: Surrogate):
        steps = x_seq.shape[0]
        x, perm = as_rows(x_seq)
        n = x.shape[1]
        theta, levels = params.threshold, params.levels
        spikes = torch.empty((steps, n), dtype=x.dtype, device=x.device)
        v_last = torch.empty((n,), dtype=x.dtype, device=x.device)
        chunk = _chunk_size(x)
        v = torch.empty((chunk,), dtype=x.dtype, device=x.device)
        mix = None if tgim is None else tgim.to(x.dtype)
        staging = _staging(x, chunk) if mix is not None else None
        start = x.new_full((chunk,), params.v_init * theta)  # v_0
        leaks = [None] * steps if leak_seq is None else leak_seq.unbind(0)
        for a, b in _spans(n, chunk):
            out = spikes[:, a:b]
            currents = x[:, a:b] if mix is None else torch.mm(mix, _dense(x[:, a:b], staging), out=out)
            v_now, v_prev = v[: b - a], v_last[a:b]
            rows = zip(currents.unbind(0), out.unbind(0), leaks, strict=True)
            for t, (current, s_t, leak) in enumerate(rows):
                _charge(current, start[: b - a] if t == 0 else v_prev, leak, out=v_now)
                _fire(v_now, theta, levels, out=s_t)
                torch.sub(v_now, s_t, out=v_prev)
        ctx.params, ctx.surrogate = params, surrogate
        return finish_forward(ctx, x_seq, perm, (x, tgim, leak_seq, spikes), spikes, v_last)

    @staticmethod
    def backward(ctx, grad_spikes, _grad_v):
        x, tgim, leak_seq, spikes = ctx.saved_tensors
        params, surrogate = ctx.params, ctx.surrogate
        need_x, need_tgim, need_leak = ctx.needs_input_grad[:3]
        steps, n = x.shape
        like = dict(dtype=x.dtype, device=x.device)
        if grad_spikes is None:  # only the final membrane was used
            return None, None, None, None, None
        grad = rows_in(grad_spikes, ctx.perm)
        grad_x = grad_tgim = None
        chunk = _chunk_size(x)
        if tgim is None:  # dL/dI is dL/dx: write it straight into the gradient
            grad_current = torch.empty((steps, n), **like)
        else:
            tgim = tgim.to(x.dtype)
            buffer = torch.empty((steps, chunk), **like)  # I_t of the chunk, then dL/dI_t
            grad_x = torch.empty((steps, n), **like) if need_x else None
            grad_tgim = torch.zeros((steps, steps), **like) if need_tgim else None
        spans = _spans(n, chunk)
        leak_parts = torch.empty((len(spans), steps), **like) if need_leak else None
        lo, hi = Surrogate.window(params.threshold, params.levels)
        v_start = params.v_init * params.threshold
        start = x.new_full((chunk,), v_start)
        v = torch.empty((chunk,), **like)
        v_prev = torch.empty((chunk,), **like)
        mask = torch.empty((chunk,), **like) if surrogate.binary else None
        staging = _staging(x, chunk) if tgim is not None else None
        leaks = [None] * steps if leak_seq is None else leak_seq.unbind(0)
        for k, (a, b) in enumerate(spans):
            x_chunk = x[:, a:b]
            if tgim is None:
                currents, grad_chunk = x_chunk, grad_current[:, a:b]
            else:
                x_chunk = _dense(x_chunk, staging)
                grad_chunk = buffer[:, : b - a]
                currents = torch.mm(tgim, x_chunk, out=grad_chunk)
            v_now, v_before = v[: b - a], v_prev[: b - a]
            m = None if mask is None else mask[: b - a]
            rows = zip(currents.unbind(0), grad_chunk.unbind(0), grad[:, a:b].unbind(0),
                       spikes[:, a:b].unbind(0), leaks, strict=True)
            for t, (current, out_t, g_t, s_t, leak) in enumerate(rows):
                _charge(current, start[: b - a] if t == 0 else v_before, leak, out=v_now)
                if m is not None:  # rectangle: dL/dI = dL/ds · [lo <= v <= hi]
                    torch.clamp(v_now, lo, hi, out=m)
                    torch.eq(m, v_now, out=m)  # v inside the window is left unchanged by the clamp
                    torch.mul(g_t, m, out=out_t)
                else:
                    torch.mul(g_t, surrogate.grad(v_now, params.threshold, params.levels), out=out_t)
                if need_leak and t == 0:
                    torch.sum(out_t, 0, out=leak_parts[k, t]).mul_(v_start)
                elif need_leak:
                    torch.dot(out_t, v_before, out=leak_parts[k, t])
                torch.sub(v_now, s_t, out=v_before)
            if tgim is not None:
                if need_x:
                    torch.mm(tgim.t(), grad_chunk, out=grad_x[:, a:b])
                if need_tgim:
                    grad_tgim.addmm_(grad_chunk, x_chunk.t())
        if tgim is None and need_x:
            grad_x = grad_current
        grad_leak = leak_parts.sum(0) if need_leak else None
        grad_x = None if grad_x is None else from_rows(grad_x, ctx.shape, ctx.perm)
        return grad_x, grad_tgim, grad_leak, None, None


def as_rows(x_seq: torch.Tensor) -> tuple[torch.Tensor, list[int] | None]:
    """``x_seq [T, ...]`` as ``[T, N]`` rows that walk each step in memory order, and the dim order used.

    A view whenever every step is dense in some dim order (contiguous, channels_last, one step
    expanded over T), so a neuron neither copies its input nor changes its layout; otherwise a copy.
    The order is None when each step is contiguous. ``rows_in`` applies a known order to another
    tensor (a gradient), ``from_rows`` undoes it.
    """
    steps = x_seq.shape[0]
    step = x_seq[0]
    if step.is_contiguous():
        return x_seq.reshape(steps, -1), None
    dims = sorted(range(step.dim()), key=step.stride, reverse=True)
    if not step.permute(dims).is_contiguous():
        return x_seq.reshape(steps, -1), None
    perm = [0, *(d + 1 for d in dims)]
    return x_seq.permute(perm).reshape(steps, -1), perm


def rows_in(x_seq: torch.Tensor, perm: list[int] | None) -> torch.Tensor:
    """``x_seq [T, ...]`` as ``[T, N]`` rows in the dim order ``perm`` from ``as_rows`` (copy if needed)."""
    if perm is not None:
        x_seq = x_seq.permute(perm)
    return x_seq.reshape(x_seq.shape[0], -1)


def from_rows(rows: torch.Tensor, shape, perm: list[int] | None, step: bool = False) -> torch.Tensor:
    """Inverse of ``as_rows``: a ``[T, N]`` (``step``: ``[N]``) tensor as ``shape`` in the same layout."""
    if step:  # one step [N] of a [T, N] tensor
        perm = None if perm is None else [p - 1 for p in perm[1:]]
        shape = shape[1:]
    if perm is None:
        return rows.view(shape)
    inverse = sorted(range(len(perm)), key=perm.__getitem__)
    return rows.view([shape[p] for p in perm]).permute(inverse)


def _staging(x: torch.Tensor, chunk: int) -> torch.Tensor | None:
    """A ``[T, chunk]`` buffer when the rows of ``x`` are not BLAS-ready (a step expanded over T)."""
    return torch.empty((x.shape[0], chunk), dtype=x.dtype, device=x.device) if x.stride(0) == 0 else None


def _dense(x_chunk: torch.Tensor, staging: torch.Tensor | None) -> torch.Tensor:
    """The chunk itself, or its copy in ``staging`` (BLAS would copy it anyway, slowly)."""
    if staging is None:
        return x_chunk
    return staging[:, : x_chunk.shape[1]].copy_(x_chunk)


def _spans(n: int, chunk: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk, n)) for a in range(0, n, chunk)]


def _is_power_of_two(value: float) -> bool:
    return value > 0 and math.frexp(value)[0] == 0.5


def _fire(v, threshold: float, levels: int, out):
    """``staircase(v)`` into ``out``, bit for bit, with cheaper ops where they are exact: one compare for
    L = 1, and for θ = 2^k ``floor(v · 2^-k)`` (exact) instead of ATen's float floor-division, which
    goes through ``fmod`` and costs ten times more."""
    if levels == 1:  # ⌊v/θ⌋ >= 1 exactly when v >= θ: one compare
        torch.ge(v, threshold, out=out)
        return out if threshold == 1.0 else out.mul_(threshold)
    if threshold != 1.0 and _is_power_of_two(threshold):
        torch.mul(v, 1.0 / threshold, out=out).floor_()
        return out.clamp_(0, levels).mul_(threshold)
    return staircase(v, threshold, levels, out=out)


def _charge(current, v_prev, leak, out):
    """``v = λ·v_prev + I`` (``λ = 1`` when ``leak`` is None), the op the plain path uses too."""
    if leak is None:
        return torch.add(current, v_prev, out=out)
    return torch.addcmul(current, v_prev, leak, out=out)


def lmht_fused(x_seq, params: NeuronParams, tgim=None, leak_seq=None, surrogate: Surrogate | None = None):
    """Fused multi-step neuron; see ``_FusedNeuron``. Returns ``(spikes, final membrane)``."""
    return apply_outside_autocast(_FusedNeuron, x_seq, tgim, leak_seq, params, surrogate)


def apply_outside_autocast(function, x_seq, tgim, leak_seq, params: NeuronParams, surrogate):
    """``function.apply(...)`` of a neuron autograd function; under CUDA autocast it runs outside it in
    float32, since the thresholds need float32 resolution."""
    if x_seq.is_cuda and torch.is_autocast_enabled("cuda"):
        with torch.autocast("cuda", enabled=False):
            return function.apply(x_seq.float(), None if tgim is None else tgim.float(),
                                  None if leak_seq is None else leak_seq.float(), params, surrogate)
    return function.apply(x_seq, tgim, leak_seq, params, surrogate)


def finish_forward(ctx, x_seq, perm, saved, spikes, v_last):
    """Common end of every fused neuron's forward: save ``saved`` (input, Ω, leaks and spikes only —
    the membranes are recomputed in backward), skip the unused final membrane's gradient, and return
    ``(spikes, final membrane)`` in the input's shape and layout (``perm`` from ``as_rows``)."""
    ctx.set_materialize_grads(False)
    ctx.shape, ctx.perm = x_seq.shape, perm
    ctx.save_for_backward(*saved)
    v_last = from_rows(v_last, x_seq.shape, perm, step=True)
    ctx.mark_non_differentiable(v_last)
    return from_rows(spikes, x_seq.shape, perm), v_last


def _plain(x_seq, params: NeuronParams, tgim=None, leak_seq=None, surrogate: Surrogate | None = None):
    return lmht_multistep_plain(x_seq, params, tgim, leak_seq, surrogate, return_state=True)


register_backend("plain", _plain)
register_backend("torch", lmht_fused)

# Optional backends (compile, triton) register themselves; imported last so the registry exists.
import lmht.backends  # noqa: E402, F401
