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

from lmht.functional import NeuronParams, lmht_multistep_plain
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
    """Whole-sequence LM-HT neuron. Saves: x (only if Ω needs a gradient), Ω (only if x does), the
    surrogate window as bool ``[T, N]`` (float membrane for non-binary surrogates), and the membrane
    before each charge (only if the leak needs a gradient)."""

    @staticmethod
    def forward(ctx, x_seq, tgim, leak_seq, params: NeuronParams, surrogate: Surrogate):
        steps = x_seq.shape[0]
        x = x_seq.reshape(steps, -1)
        currents = x if tgim is None else tgim.to(x.dtype) @ x
        theta, levels = params.threshold, params.levels
        need_x, need_tgim, need_leak = ctx.needs_input_grad[:3]
        need_grad = need_x or need_tgim or need_leak

        spikes = torch.empty_like(currents)
        v = torch.full_like(currents[0], params.v_init * theta)
        binary = surrogate.binary
        window = v_pre = v_prev = None
        if need_grad:
            if binary:
                window = torch.empty(currents.shape, dtype=torch.bool, device=x.device)
            else:
                v_pre = torch.empty_like(currents)
            if need_leak:
                v_prev = torch.empty_like(currents)
        lo, hi = Surrogate.window(theta, levels)
        for t in range(steps):
            if v_prev is not None:
                v_prev[t].copy_(v)
            if leak_seq is not None:
                v.mul_(leak_seq[t])
            v.add_(currents[t])
            if window is not None:
                torch.ge(v, lo, out=window[t])
                window[t].logical_and_(v <= hi)
            elif v_pre is not None:
                v_pre[t].copy_(v)
            s = spikes[t]
            # same op sequence as functional.staircase, written into the output buffer
            if theta == 1.0:
                torch.floor(v, out=s)
            else:
                torch.div(v, theta, out=s)
                s.floor_()
            s.clamp_(0, levels)
            if theta != 1.0:
                s.mul_(theta)
            v.sub_(s)

        ctx.params, ctx.surrogate, ctx.shape = params, surrogate, x_seq.shape
        ctx.save_for_backward(
            x if need_tgim else None,
            tgim if (need_x and tgim is not None) else None,
            window if window is not None else v_pre,
            v_prev,
        )
        ctx.mark_non_differentiable(v)
        return spikes.view(x_seq.shape), v.view(x_seq.shape[1:])

    @staticmethod
    def backward(ctx, grad_spikes, _grad_v):
        x, tgim, window_or_v, v_prev = ctx.saved_tensors
        steps = ctx.shape[0]
        grad = grad_spikes.reshape(steps, -1)
        if ctx.surrogate.binary:
            grad_current = grad * window_or_v
        else:
            grad_current = grad * ctx.surrogate.grad(window_or_v, ctx.params.threshold, ctx.params.levels)
        grad_x = grad_tgim = grad_leak = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_current if tgim is None else tgim.t().to(grad.dtype) @ grad_current
            grad_x = grad_x.view(ctx.shape)
        if ctx.needs_input_grad[1]:
            grad_tgim = grad_current @ x.t()
        if ctx.needs_input_grad[2]:
            grad_leak = (grad_current * v_prev).sum(1)
        return grad_x, grad_tgim, grad_leak, None, None


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
