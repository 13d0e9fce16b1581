"""Pure maths of the LM-HT method: QCFS, T-GIM mixing and the (multi-level) neuron update.

Everything here is a function of tensors (no modules, no state) so the paper's lemmas can be tested
directly. The neuron update of LM-HT (Hao et al., 2024, Eqs. 5-8) for one step ``t`` is

    I_t = Σ_j Ω[t, j] · x_j                      (T-GIM; without it I_t = x_t)
    v_t = λ_t · v_{t-1} + I_t                      (charge; v_0 = v_init · θ)
    s_t = θ · clamp(floor(v_t / θ), 0, L)          (fire the highest level reached)
    v_t ← v_t − s_t                               (soft reset)

``L = 1`` is the vanilla IF neuron, ``λ < 1`` the leaky one. STBP cuts the recurrence: ``v_{t-1}``
and the reset are detached, so gradients cross time steps only through Ω. This module holds the
*plain* autograd path (one op per step, autograd records everything); ``lmht.kernels`` holds the
fused path with identical values and gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from lmht.surrogate import Surrogate, create_surrogate

__all__ = [
    "NeuronParams",
    "fire",
    "floor_ste",
    "lmht_multistep_plain",
    "lmht_step",
    "qcfs",
    "staircase",
    "tgim_mix",
]


class NeuronParams(NamedTuple):
    """Fixed hyper-parameters of a multi-level soft-reset neuron.

    Attributes:
        levels: L, the number of threshold levels (1 for IF).
        threshold: θ, the per-level threshold (> 0).
        v_init: initial membrane as a fraction of θ (``v_0 = v_init · θ``).
    """

    levels: int
    threshold: float
    v_init: float


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    """``floor(x)`` with a straight-through (identity) gradient."""
    return _FloorSTE.apply(x)


def qcfs(x: torch.Tensor, levels: int, threshold: torch.Tensor | float) -> torch.Tensor:
    """Quantization-clip-floor-shift activation (Bu et al., 2022; LM-HT Eq. 11).

    ``QCFS_{Q,ϑ}(x) = (ϑ / Q) · clamp(floor(x · Q / ϑ + 0.5), 0, Q)``, computed as
    ``ϑ · floor(clamp(x / ϑ, 0, 1) · Q + 0.5) / Q`` so that ϑ receives a gradient through the clip
    (straight-through floor), as in the reference.

    Args:
        x: any shape.
        levels: Q ≥ 1.
        threshold: ϑ (scalar tensor or float, > 0).
    """
    y = torch.clamp(x / threshold, 0.0, 1.0)
    return floor_ste(y * levels + 0.5) / levels * threshold


def tgim_mix(x_seq: torch.Tensor, tgim: torch.Tensor | None) -> torch.Tensor:
    """Apply the Temporal-Global Information Matrix over the time axis: ``I_t = Σ_j Ω[t, j] x_j``.

    One matmul over time for all neurons at once.

    Args:
        x_seq: ``[T, ...]`` input currents.
        tgim: ``[T, T]`` matrix Ω, or None for no mixing (``I = x``).
    Returns:
        ``[T, ...]`` mixed currents.
    """
    if tgim is None:
        return x_seq
    steps = x_seq.shape[0]
    return (tgim.to(x_seq.dtype) @ x_seq.reshape(steps, -1)).reshape(x_seq.shape)


def staircase(v: torch.Tensor, threshold: float, levels: int,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """``θ · clamp(floor(v / θ), 0, L)`` (Eq. 7): the op sequence every backend shares.

    ``floor(v / θ)`` is one floor-division; the clamp covers all L levels at once (no per-level pass).
    """
    if threshold == 1.0:
        out = torch.floor(v, out=out)
    else:
        out = torch.div(v, threshold, rounding_mode="floor", out=out)
    out.clamp_(0, levels)
    if threshold != 1.0:
        out.mul_(threshold)
    return out


class _MultiLevelFire(torch.autograd.Function):
    """``s = θ · clamp(floor(v / θ), 0, L)`` forward; surrogate ``ds/dv`` backward."""

    @staticmethod
    def forward(ctx, v, threshold: float, levels: int, surrogate: Surrogate):
        ctx.save_for_backward(v)
        ctx.threshold, ctx.levels, ctx.surrogate = threshold, levels, surrogate
        return staircase(v, threshold, levels)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * ctx.surrogate.grad(v, ctx.threshold, ctx.levels), None, None, None


def fire(v: torch.Tensor, threshold: float, levels: int, surrogate: str | Surrogate = "rectangle"):
    """Multi-level firing of Eq. 7 with a surrogate gradient: values ``{0, θ, …, Lθ}``."""
    return _MultiLevelFire.apply(v, threshold, levels, create_surrogate(surrogate))


def lmht_step(
    current: torch.Tensor,
    v: torch.Tensor,
    params: NeuronParams,
    leak: torch.Tensor | float = 1.0,
    surrogate: str | Surrogate = "rectangle",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the multi-level soft-reset neuron (charge, fire, reset).

    Args:
        current: ``[B, ...]`` input current ``I_t`` (already mixed by T-GIM).
        v: ``[B, ...]`` membrane after the previous reset; detached here (STBP cuts the recurrence).
        params: levels L, threshold θ, v_init (unused here).
        leak: λ_t, a scalar (tensor, may require grad) or float.
    Returns:
        ``(s_t, v_t)``: spikes ``{0, θ, …, Lθ}`` and the membrane after the soft reset.
    """
    v = v.detach()
    # the fused kernel's ops (add / addcmul), so both paths round identically
    if isinstance(leak, torch.Tensor):
        v = torch.addcmul(current, v, leak)
    else:
        v = current + v if leak == 1.0 else torch.addcmul(current, v, torch.tensor(leak, dtype=v.dtype))
    spike = fire(v, params.threshold, params.levels, surrogate)
    return spike, v - spike.detach()


def lmht_multistep_plain(
    x_seq: torch.Tensor,
    params: NeuronParams,
    tgim: torch.Tensor | None = None,
    leak_seq: torch.Tensor | None = None,
    surrogate: str | Surrogate = "rectangle",
    return_state: bool = False,
):
    """Reference multi-step LM-HT neuron: T-GIM mix, then ``lmht_step`` for t = 1..T.

    This is the slow, obviously-correct path that the fused kernels are tested against.

    Args:
        x_seq: ``[T, B, ...]`` input (any trailing shape, or none).
        params: L, θ, v_init.
        tgim: ``[T, T]`` Ω or None (no mixing).
        leak_seq: ``[T]`` per-step leak λ_t, or None for λ = 1.
        return_state: also return the final membrane ``[B, ...]``.
    Returns:
        ``[T, B, ...]`` spikes (and the final membrane if ``return_state``).
    """
    currents = tgim_mix(x_seq, tgim)
    v = torch.full_like(x_seq[0], params.v_init * params.threshold)
    spikes = []
    for t in range(x_seq.shape[0]):
        leak = 1.0 if leak_seq is None else leak_seq[t]
        s, v = lmht_step(currents[t], v, params, leak, surrogate)
        spikes.append(s)
    out = torch.stack(spikes)
    return (out, v.detach()) if return_state else out
