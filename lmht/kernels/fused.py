"""``torch`` backend: the whole multi-step neuron as one ``autograd.Function`` (ATen ops only).

Forward, for ``x [T, N]`` rows (Eqs. 5-8)::

    I = Ω x;   u_t = λ_t v_{t-1} + I_t;   s_t = staircase(u_t);   v_t = u_t − s_t

T-GIM as a single matmul over time, multi-level firing in a fixed number of elementwise ops for any
L (``lmht.functional.staircase``: a clamp and a scaled floor, plus one boundary comparison for the
few θ without an exact multiplier), membrane
updated in place, no autograd graph per step, neurons processed in cache-sized chunks, nothing saved
but the input and the spikes (the membranes are recomputed in backward, with the same ops, so bit for
bit). Backward, with ``σ'`` the surrogate and ``g_t = dL/ds_t``:

    STBP (``params.bptt`` False, LM-HT):  dL/du_t = g_t σ'(u_t)            (one forward sweep)
    BPTT (``params.bptt`` True, IF):      dL/du_t = c_t + (g_t − c_t) σ'(u_t),  c_t = λ_{t+1} dL/du_{t+1}
                                          (a recompute sweep storing u_t, then a reverse sweep)

then ``dL/dx = Ωᵀ dL/dI``, ``dL/dΩ = dL/dI xᵀ`` and ``dL/dλ_t = Σ dL/du_t · v_{t-1}``. Values and
gradients equal the ``plain`` path's (gradients to round-off).
"""

from __future__ import annotations

import threading

import torch

from lmht.functional import FireConstants, NeuronParams, fire_constants
from lmht.kernels.layout import (
    apply_outside_autocast,
    as_rows,
    dense,
    finish_forward,
    from_rows,
    rows_in,
    spans,
    staging,
)
from lmht.surrogate import Surrogate

__all__ = ["CHUNK", "CUDA_CHUNK", "lmht_fused"]

#: Neurons per chunk on CPU: the whole time loop runs on one chunk before the next, so a step's
#: operands stay in cache, and the backward pass's ``dL/dI`` buffer is ``[T, chunk]``, not ``[T, N]``.
#: 2^16 float32 = 256 KiB per row (two 32768-element grains, so ATen can still split each op over two
#: threads); a multiple of 64, the column blocking of BLAS, so the chunked ``Ω x`` equals one matmul
#: bit for bit.
CHUNK = 1 << 16
#: The same on GPUs, where every op is a kernel launch: chunks only bound the buffer on huge layers.
CUDA_CHUNK = 1 << 22


def _chunk_size(x: torch.Tensor) -> int:
    return min(x.shape[1], CUDA_CHUNK if x.is_cuda else CHUNK)


_WORKSPACE = threading.local()


def _scratch(rows: int, chunk: int, like: torch.Tensor) -> torch.Tensor:
    """A ``[rows, chunk]`` scratch buffer. On CPU it is a view of a per-thread buffer kept between calls
    (``(T + 4) · CHUNK`` floats at most), so a call pays no fresh pages for its scratch; CUDA's caching
    allocator already reuses memory. Valid until the next call of this thread."""
    if like.device.type != "cpu" or torch.compiler.is_compiling():
        return torch.empty((rows, chunk), dtype=like.dtype, device=like.device)
    cache = _WORKSPACE.__dict__.setdefault("buffers", {})
    buffer = cache.get(like.dtype)
    if buffer is None or buffer.numel() < rows * chunk:
        buffer = cache[like.dtype] = torch.empty(rows * chunk, dtype=like.dtype)
    return buffer[: rows * chunk].view(rows, chunk)


def _fire(v, c: FireConstants, levels: int, out, clipped, upper):
    """``staircase(v)`` into ``out``, op for op (``clipped``, ``upper``: chunk-sized scratch rows for the
    corrected estimate).

    Float outputs for the comparisons: ``where`` and bool masks cost 5-20× more per element on CPU.
    """
    if levels == 1:  # v >= fl(θ): one compare
        torch.ge(v, c.threshold, out=out)
        return out if c.threshold == 1.0 else out.mul_(c.threshold)
    if c.exact:  # in place in out
        if c.inverse == 1.0:
            torch.clamp(v, 0.0, c.top_scaled, out=out).floor_()
        else:
            torch.mul(v, c.inverse, out=out).clamp_(0.0, c.top_scaled).floor_()
        return out if c.threshold == 1.0 else out.mul_(c.threshold)
    torch.clamp(v, 0.0, c.top, out=clipped)
    torch.mul(clipped, c.inverse, out=out).floor_()
    # the estimate is the level or one below: one comparison with fl((k̂ + 1)·θ)
    torch.add(out, 1.0, out=upper).mul_(c.threshold)
    torch.ge(clipped, upper, out=upper)
    return out.add_(upper).mul_(c.threshold)


#: ``grad · [lo < v < hi]`` in one vectorized ATen op (the backward of ``hardtanh``)
_WINDOW = torch.ops.aten.hardtanh_backward.grad_input


def _open_window(threshold: float, levels: int, dtype: torch.dtype) -> tuple[float, float]:
    """Bounds ``(lo⁻, hi⁺)`` with ``lo⁻ < v < hi⁺`` exactly when ``lo ≤ v ≤ hi`` in ``dtype``, for the
    rectangular surrogate's closed window ``[lo, hi]`` (``Surrogate.window``; both rounded to ``dtype``
    as ATen rounds a Python scalar): the next floats outward."""
    lo, hi = (torch.tensor(bound, dtype=dtype) for bound in Surrogate.window(threshold, levels))
    return (float(torch.nextafter(lo, torch.tensor(-torch.inf, dtype=dtype))),
            float(torch.nextafter(hi, torch.tensor(torch.inf, dtype=dtype))))


def _charge(current, v_prev, leak, out):
    """``u = λ·v_prev + I`` (``λ = 1`` when ``leak`` is None), the op the plain path uses too."""
    if leak is None:
        return torch.add(current, v_prev, out=out)
    return torch.addcmul(current, v_prev, leak, out=out)


class _FusedNeuron(torch.autograd.Function):
    """Whole-sequence neuron that saves nothing but its input and its output.

    Both are alive anyway (the next layer saves the spikes, Ω needs x), so the neuron adds no
    activation memory. The forward pass writes the mixed currents of a chunk into the output buffer
    (row t is read before s_t lands). The backward pass recomputes ``I`` of a chunk into a ``[T, chunk]``
    buffer and overwrites it with ``dL/dI`` (BPTT: first with ``u_t``, then, in reverse time, with
    ``dL/du_t``), then applies Ωᵀ into the ``dL/dx`` output, so beyond its outputs it allocates only
    chunk-sized buffers. The rectangular surrogate's window is one op (``hardtanh``'s backward with the
    bounds moved one float outward: no ``where`` or bool masks, whose per-element branches are 5-20×
    slower on CPU); the gradient of the unused final membrane is never materialized; a step expanded
    over T (direct encoding) is staged per chunk for BLAS.
    """

    @staticmethod
    def forward(ctx, x_seq, tgim, leak_seq, params: NeuronParams, surrogate: Surrogate):
        steps = x_seq.shape[0]
        x, perm = as_rows(x_seq)
        n = x.shape[1]
        const = fire_constants(params.threshold, params.levels, x.dtype)
        spikes = torch.empty((steps, n), dtype=x.dtype, device=x.device)
        v_last = torch.empty((n,), dtype=x.dtype, device=x.device)
        chunk = _chunk_size(x)
        v, clipped, upper = _scratch(3, chunk, x).unbind(0)
        mix = None if tgim is None else tgim.to(x.dtype)
        buffer = staging(x, chunk) if mix is not None else None
        start = x.new_full((1,), params.v_init * params.threshold).expand(chunk)  # v_0, no buffer
        leaks = [None] * steps if leak_seq is None else leak_seq.unbind(0)
        for a, b in spans(n, chunk):
            out = spikes[:, a:b]
            currents = x[:, a:b] if mix is None else torch.mm(mix, dense(x[:, a:b], buffer), out=out)
            m = b - a
            v_now, v_prev, v_0, clip, up = v[:m], v_last[a:b], start[:m], clipped[:m], upper[:m]
            rows = zip(currents.unbind(0), out.unbind(0), leaks, strict=True)
            for t, (current, s_t, leak) in enumerate(rows):
                _charge(current, v_0 if t == 0 else v_prev, leak, out=v_now)
                _fire(v_now, const, params.levels, s_t, clip, up)
                torch.sub(v_now, s_t, out=v_prev)
        ctx.params, ctx.surrogate = params, surrogate
        return finish_forward(ctx, x_seq, perm, (x, tgim, leak_seq, spikes), spikes, v_last)

    @staticmethod
    def backward(ctx, grad_spikes, _grad_v):
        if grad_spikes is None:  # only the final membrane was used
            return None, None, None, None, None
        x, tgim, leak_seq, spikes = ctx.saved_tensors
        need_x, need_tgim, need_leak = ctx.needs_input_grad[:3]
        steps, n = x.shape
        like = dict(dtype=x.dtype, device=x.device)
        grad = rows_in(grad_spikes, ctx.perm)
        chunk = _chunk_size(x)
        grad_x = grad_tgim = None
        if tgim is None:  # dL/dI is dL/dx: write it straight into the gradient
            grad_current = torch.empty((steps, n), **like)
        else:
            tgim = tgim.to(x.dtype)
            grad_x = torch.empty((steps, n), **like) if need_x else None
            grad_tgim = torch.zeros((steps, steps), **like) if need_tgim else None
        scratch = _scratch(4 + steps, chunk, x)
        buffer = scratch[4:]  # with Ω: I_t of the chunk, then dL/dI_t
        parts = spans(n, chunk)
        sweep = _Sweep(ctx.params, ctx.surrogate, steps, scratch[:4], need_leak, leak_seq, like)
        leak_parts = torch.empty((len(parts), steps), **like) if need_leak else None
        x_buffer = staging(x, chunk) if tgim is not None else None
        for k, (a, b) in enumerate(parts):
            x_chunk = x[:, a:b]
            if tgim is None:
                currents, grad_chunk = x_chunk, grad_current[:, a:b]
            else:
                x_chunk = dense(x_chunk, x_buffer)
                grad_chunk = buffer[:, : b - a]
                currents = torch.mm(tgim, x_chunk, out=grad_chunk)
            leak_part = None if leak_parts is None else leak_parts[k]
            if ctx.params.bptt:  # u_t in a cache-resident buffer (with Ω: grad_chunk is that buffer)
                membranes = grad_chunk if tgim is not None else buffer[:, : b - a]
                sweep.bptt(currents, grad_chunk, grad[:, a:b], spikes[:, a:b], leak_part, membranes)
            else:
                sweep.stbp(currents, grad_chunk, grad[:, a:b], spikes[:, a:b], leak_part)
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


class _Sweep:
    """The backward time loops over one chunk, with their chunk-sized scratch ``rows [4, chunk]``.

    Each writes ``dL/du_t`` (= ``dL/dI_t``) into ``out`` (``[T, m]``; may alias ``currents``) and, when
    the leak is learned, ``dL/dλ_t``'s part of the chunk into ``leak_part [T]``.
    """

    def __init__(self, params: NeuronParams, surrogate: Surrogate, steps: int, rows: torch.Tensor,
                 need_leak: bool, leak_seq, like: dict):
        self.params, self.surrogate, self.need_leak = params, surrogate, need_leak
        self.leaks = [None] * steps if leak_seq is None else leak_seq.unbind(0)
        self.lo, self.hi = _open_window(params.threshold, params.levels, like["dtype"])
        self.v_start = params.v_init * params.threshold
        start = torch.full((1,), self.v_start, **like).expand(rows.shape[1])
        one = torch.ones((1,), **like).expand(rows.shape[1])
        self.rows = (*rows.unbind(0), start, one)  # v, v_prev, scratch, carry, v_0, 1
        self.views: dict[int, tuple] = {}

    def _rows(self, m: int) -> tuple:
        """The scratch rows cut to a chunk of ``m`` neurons (cut once per size)."""
        views = self.views.get(m)
        if views is None:
            views = self.views[m] = tuple(row[:m] for row in self.rows)
        return views

    def _slope(self, v, rows):
        """``σ'(v)``; the rectangle is a float 0/1 mask in the scratch row."""
        if self.surrogate.binary:  # rectangle: [lo <= v <= hi]
            return _WINDOW(rows[5], v, self.lo, self.hi, grad_input=rows[2])
        return self.surrogate.grad(v, self.params.threshold, self.params.levels)

    def _masked(self, g, v, rows, out):
        """``g · σ'(v)`` into ``out``: one op for the rectangle."""
        if self.surrogate.binary:
            return _WINDOW(g, v, self.lo, self.hi, grad_input=out)
        return torch.mul(g, self._slope(v, rows), out=out)

    def stbp(self, currents, out, grad, spikes, leak_part):
        """Detached recurrence: one forward sweep, ``dL/du_t = g_t σ'(u_t)``."""
        rows = self._rows(out.shape[1])
        v_now, v_before, v_0 = rows[0], rows[1], rows[4]
        steps = zip(currents.unbind(0), out.unbind(0), grad.unbind(0), spikes.unbind(0), self.leaks,
                    strict=True)
        for t, (current, out_t, g_t, s_t, leak) in enumerate(steps):
            _charge(current, v_0 if t == 0 else v_before, leak, out=v_now)
            self._masked(g_t, v_now, rows, out_t)
            if self.need_leak:
                self._leak_part(out_t, v_before, t, leak_part)
            torch.sub(v_now, s_t, out=v_before)

    def bptt(self, currents, out, grad, spikes, leak_part, membranes):
        """Full BPTT: recompute ``u_t`` into ``membranes [T, m]`` (may be ``out``), then
        ``dL/du_t = c_t + (g_t − c_t) σ'(u_t)`` into ``out`` in reverse time with the carry
        ``c_t = λ_{t+1} dL/du_{t+1}`` (``c_T = 0``: the final membrane is unused)."""
        rows = self._rows(out.shape[1])
        v_before, v_0 = rows[1], rows[4]
        rows_u, rows_out, rows_g = membranes.unbind(0), out.unbind(0), grad.unbind(0)
        for t, (current, u_t, s_t, leak) in enumerate(zip(currents.unbind(0), rows_u, spikes.unbind(0),
                                                          self.leaks, strict=True)):
            _charge(current, v_0 if t == 0 else v_before, leak, out=u_t)
            torch.sub(u_t, s_t, out=v_before)
        carry = None
        for t in reversed(range(len(rows_out))):
            u_t, g_t, out_t = rows_u[t], rows_g[t], rows_out[t]
            if carry is None:
                self._masked(g_t, u_t, rows, out_t)
            else:  # c + σ'·(g − c) in one op; a 0/1 mask selects g or c exactly
                torch.lerp(carry, g_t, self._slope(u_t, rows), out=out_t)
            if self.need_leak:
                if t > 0:
                    torch.sub(rows_u[t - 1], spikes[t - 1], out=v_before)  # v_{t-1} (row t-1 is u still)
                self._leak_part(out_t, v_before, t, leak_part)
            leak = self.leaks[t]
            carry = out_t if leak is None else torch.mul(out_t, leak, out=rows[3])

    def _leak_part(self, grad_u, v_before, t: int, leak_part):
        if t == 0:
            torch.sum(grad_u, 0, out=leak_part[0]).mul_(self.v_start)
        else:
            torch.dot(grad_u, v_before, out=leak_part[t])


def lmht_fused(x_seq, params: NeuronParams, tgim=None, leak_seq=None, surrogate: Surrogate | None = None):
    """``torch`` backend: ``(spikes [T, ...], final membrane [...])``; see the module docstring."""
    if surrogate is None:
        raise ValueError("surrogate: the torch backend needs a Surrogate (lmht.surrogate.create_surrogate)")
    return apply_outside_autocast(_FusedNeuron, x_seq, tgim, leak_seq, params, surrogate)
