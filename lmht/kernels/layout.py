"""Layout helpers every fused backend shares (a leaf: imports nothing of ``lmht``).

A neuron is elementwise over its ``N`` neurons, so each backend works on ``x [T, N]`` rows. These
helpers view a ``[T, ...]`` tensor as such rows without copying (contiguous, channels_last or a step
expanded over T), restore the input's shape and layout at the end, and hold the end of every fused
forward (what to save, the non-differentiable final membrane) and the float32 island under autocast.
"""

from __future__ import annotations

import torch

__all__ = ["apply_outside_autocast", "as_rows", "dense", "finish_forward", "from_rows", "rows_in", "spans",
           "staging"]


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


def staging(x: torch.Tensor, chunk: int) -> torch.Tensor | None:
    """A ``[T, chunk]`` buffer when the rows of ``x`` are not BLAS-ready (a step expanded over T)."""
    return torch.empty((x.shape[0], chunk), dtype=x.dtype, device=x.device) if x.stride(0) == 0 else None


def dense(x_chunk: torch.Tensor, buffer: torch.Tensor | None) -> torch.Tensor:
    """The chunk itself, or its copy in the ``staging`` buffer (BLAS would copy it anyway, slowly)."""
    if buffer is None:
        return x_chunk
    return buffer[:, : x_chunk.shape[1]].copy_(x_chunk)


def spans(n: int, chunk: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in pieces of ``chunk``."""
    return [(a, min(a + chunk, n)) for a in range(0, n, chunk)]


def apply_outside_autocast(function, x_seq, tgim, leak_seq, params, surrogate):
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
