"""Fused multi-step neuron kernels and the backend registry.

A backend computes the whole multi-step neuron of ``lmht.functional`` in one call:

    backend(x_seq, params, tgim, leak_seq, surrogate) -> (spikes [T, ...], final membrane [...])

``plain``  the per-step autograd graph of ``lmht.functional.lmht_multistep_plain`` (the reference).
``torch``  one ``autograd.Function`` over the whole time loop (default): T-GIM as a single matmul over
           time, multi-level firing as one floor (no per-level passes), the surrogate window saved as a
           bool mask, membrane updated in place, no autograd graph per step. Values and gradients equal
           the plain path's.

Other backends (``compile``, ``triton``) register themselves here when their dependencies exist.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lmht.functional import NeuronParams, lmht_multistep_plain, staircase
from lmht.surrogate import Surrogate

__all__ = ["get_backend", "list_backends", "lmht_fused", "register_backend", "set_default_backend"]

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


class _FusedNeuron(torch.autograd.Function):
    """Whole-sequence LM-HT neuron that saves nothing but its input and its output.

    Both are alive anyway (the next layer saves the spikes, Ω needs x), so the neuron adds no
    activation memory. The backward pass re-runs the cheap recurrence from them: with the spikes
    known, ``v_pre_t = λ_t v_{t-1} + I_t`` and ``v_t = v_pre_t − s_t`` are two ops a step (no floor),
    with the same ops as the forward pass, so the recomputed membranes are bitwise identical. The
    mixed currents are written into the output buffer (forward) and the current-gradient buffer
    (backward), so no ``[T, N]`` temporary is allocated either.
    """

    @staticmethod
    def forward(ctx, x_seq, tgim, leak_seq, params: NeuronParams, surrogate: Surrogate):
        steps = x_seq.shape[0]
        x = x_seq.reshape(steps, -1)
        theta, levels = params.threshold, params.levels
        spikes = torch.empty_like(x)
        if tgim is None:
            currents = x
        else:
            currents = torch.matmul(tgim.to(x.dtype), x, out=spikes)  # row t is read before s_t lands
        v = torch.empty_like(x[0])
        v_prev = torch.full_like(x[0], params.v_init * theta)
        for t in range(steps):
            _charge(currents[t], v_prev, None if leak_seq is None else leak_seq[t], out=v)
            staircase(v, theta, levels, out=spikes[t])
            torch.sub(v, spikes[t], out=v_prev)
        ctx.params, ctx.surrogate, ctx.shape = params, surrogate, x_seq.shape
        ctx.save_for_backward(x, tgim, leak_seq, spikes)
        ctx.mark_non_differentiable(v_prev)
        return spikes.view(x_seq.shape), v_prev.view(x_seq.shape[1:])

    @staticmethod
    def backward(ctx, grad_spikes, _grad_v):
        x, tgim, leak_seq, spikes = ctx.saved_tensors
        params, surrogate = ctx.params, ctx.surrogate
        steps = x.shape[0]
        grad = grad_spikes.reshape(steps, -1)
        need_x, need_tgim, need_leak = ctx.needs_input_grad[:3]
        # buffer that holds I_t until step t is processed, then dL/dI_t
        grad_current = torch.empty_like(x) if tgim is None else torch.matmul(tgim.to(x.dtype), x)
        currents = x if tgim is None else grad_current
        grad_leak = torch.empty(steps, dtype=x.dtype, device=x.device) if need_leak else None
        lo, hi = Surrogate.window(params.threshold, params.levels)
        zero = x.new_zeros(())
        v = torch.empty_like(x[0])
        v_prev = torch.full_like(x[0], params.v_init * params.threshold)
        for t in range(steps):
            _charge(currents[t], v_prev, None if leak_seq is None else leak_seq[t], out=v)
            if surrogate.binary:
                inside = torch.ge(v, lo).logical_and_(v <= hi)
                torch.where(inside, grad[t], zero, out=grad_current[t])
            else:
                torch.mul(grad[t], surrogate.grad(v, params.threshold, params.levels), out=grad_current[t])
            if need_leak:
                torch.dot(grad_current[t], v_prev, out=grad_leak[t])
            torch.sub(v, spikes[t], out=v_prev)
        grad_x = grad_tgim = None
        if need_x:
            grad_x = grad_current if tgim is None else tgim.t().to(x.dtype) @ grad_current
            grad_x = grad_x.view(ctx.shape)
        if need_tgim:
            grad_tgim = grad_current @ x.t()
        return grad_x, grad_tgim, grad_leak, None, None


def _charge(current, v_prev, leak, out):
    """``v = λ·v_prev + I`` (``λ = 1`` when ``leak`` is None), the op the plain path uses too."""
    if leak is None:
        return torch.add(current, v_prev, out=out)
    return torch.addcmul(current, v_prev, leak, out=out)


def lmht_fused(x_seq, params: NeuronParams, tgim=None, leak_seq=None, surrogate: Surrogate | None = None):
    """Fused multi-step neuron; see ``_FusedNeuron``. Returns ``(spikes, final membrane)``."""
    if x_seq.is_cuda and torch.is_autocast_enabled("cuda"):
        # thresholds need float32 resolution: run the neuron outside autocast
        with torch.autocast("cuda", enabled=False):
            return _FusedNeuron.apply(x_seq.float(), None if tgim is None else tgim.float(),
                                      None if leak_seq is None else leak_seq.float(), params, surrogate)
    return _FusedNeuron.apply(x_seq, tgim, leak_seq, params, surrogate)


def _plain(x_seq, params: NeuronParams, tgim=None, leak_seq=None, surrogate: Surrogate | None = None):
    return lmht_multistep_plain(x_seq, params, tgim, leak_seq, surrogate, return_state=True)


register_backend("plain", _plain)
register_backend("torch", lmht_fused)
