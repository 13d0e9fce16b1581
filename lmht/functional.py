"""Pure maths of the LM-HT method: QCFS, T-GIM mixing and the (multi-level) neuron update.

Everything here is a function of tensors (no modules, no state) so the paper's lemmas can be tested
directly. The neuron update of LM-HT (Hao et al., 2024, Eqs. 5-8) for one step ``t`` is

    I_t = Σ_j Ω[t, j] · x_j                      (T-GIM; without it I_t = x_t)
    v_t = λ_t · v_{t-1} + I_t                      (charge; v_0 = v_init · θ)
    s_t = fl(k·θ),  k = max{k ∈ 0..L : v_t ≥ fl(k·θ)}   (fire the highest level reached)
    v_t ← v_t − s_t                               (soft reset)

``fl(k·θ)`` is ``k·θ`` rounded in the tensor's dtype, the authors' ``v >= k * th`` comparison; it is
``θ · clamp(⌊v/θ⌋, 0, L)`` except exactly at a level boundary when θ is not a power of two.
``L = 1`` is the vanilla IF neuron, ``λ < 1`` the leaky one.

Gradients (``NeuronParams.bptt``):
    ``bptt=False`` (LM-HT's STBP, the paper's): ``v_{t-1}`` and the reset are detached, so gradients
        cross time steps only through Ω.
    ``bptt=True`` (the authors' IF baseline): nothing is detached; the reset ``v_t − s_t`` passes the
        spike's surrogate gradient too, so ``dL/du_t = g_t σ'(u_t) + λ_{t+1} dL/du_{t+1} (1 − σ'(u_t))``
        for the pre-reset membrane ``u_t`` and the surrogate ``σ'``.
This module holds the *plain* autograd path (one op per step, autograd records everything);
``lmht.kernels`` holds the fused paths with identical values and gradients.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch

from lmht.surrogate import Surrogate, create_surrogate

__all__ = [
    "FireConstants",
    "NeuronParams",
    "fire",
    "fire_constants",
    "floor_ste",
    "lmht_multistep_plain",
    "lmht_step",
    "qcfs",
    "staircase",
    "staircase_from_constants",
    "tgim_mix",
]


class NeuronParams(NamedTuple):
    """Fixed hyper-parameters of a multi-level soft-reset neuron.

    Attributes:
        levels: L, the number of threshold levels (1 for IF).
        threshold: θ, the per-level threshold (> 0).
        v_init: initial membrane as a fraction of θ (``v_0 = v_init · θ``).
        bptt: False: STBP with the recurrence and the reset detached (LM-HT); True: full BPTT through
            the membrane and the reset (the authors' IF baseline).
    """

    levels: int
    threshold: float
    v_init: float
    bptt: bool = False


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


class _QCFS(torch.autograd.Function):
    """``ϑ · clamp(⌊x/ϑ · Q + 0.5⌋ / Q, 0, 1)`` with the gradients written out (see ``qcfs``)."""

    @staticmethod
    def forward(ctx, x, threshold, levels: int):
        ctx.save_for_backward(x, threshold)
        ctx.levels = levels
        return torch.clamp(torch.floor(x / threshold * levels + 0.5) / levels, 0.0, 1.0) * threshold

    @staticmethod
    def backward(ctx, grad):
        x, threshold = ctx.saved_tensors
        ratio = x / threshold
        z = torch.floor(ratio * ctx.levels + 0.5) / ctx.levels
        inside = ((z >= 0.0) & (z <= 1.0)).to(grad.dtype)
        grad_x = grad * inside if ctx.needs_input_grad[0] else None
        grad_threshold = None
        if ctx.needs_input_grad[1]:
            slope = torch.clamp(z, 0.0, 1.0) - inside * ratio
            grad_threshold = (grad * slope).sum().reshape(threshold.shape)
        return grad_x, grad_threshold, None


def qcfs(x: torch.Tensor, levels: int, threshold: torch.Tensor | float) -> torch.Tensor:
    """Quantization-clip-floor-shift activation (Bu et al., 2022; LM-HT Eq. 11).

    ``QCFS_{Q,ϑ}(x) = ϑ · clamp(z, 0, 1)`` with ``z = ⌊x/ϑ · Q + 0.5⌋ / Q``: a straight-through floor,
    clamped *after* the floor as in the authors' code, with the clamp's subgradient 1 at its bounds (as
    in the torch versions the authors ran; torch ≥ 2.14 gives 0 there for a scalar-bound clamp, so the
    gradient is written out here rather than left to autograd)::

        dy/dx = [0 ≤ z ≤ 1]              dy/dϑ = clamp(z, 0, 1) − [0 ≤ z ≤ 1] · x/ϑ

    (so the gradient also flows on the bottom and top steps, ``x ∈ [−ϑ/2Q, (Q + 1/2)ϑ/Q)``).

    Args:
        x: any shape.
        levels: Q ≥ 1.
        threshold: ϑ (0-dim tensor, may require grad, or a float; > 0).
    """
    if not isinstance(threshold, torch.Tensor):
        threshold = torch.tensor(float(threshold), dtype=x.dtype, device=x.device)
    return _QCFS.apply(x, threshold, levels)


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


class FireConstants(NamedTuple):
    """Python floats, each exact in the tensor's dtype, that define the staircase in that dtype.

    Attributes:
        threshold: θ rounded to the dtype (what ATen, Triton and inductor multiply by).
        top: ``fl(L·θ)``, the highest level's boundary; ``v`` is clamped to ``[0, top]`` first.
        inverse: the multiplier ``c`` of the level estimate ``⌊fl(v·c)⌋`` for ``0 ≤ v ≤ top``.
        exact: True when the estimate is the level itself; False when it is the level or one below
            (then one comparison with ``fl((k̂+1)·θ)`` corrects it).
    """

    threshold: float
    top: float
    inverse: float
    exact: bool
    top_scaled: float = 0.0  # fl(top·inverse): clamping v·c to [0, top_scaled] equals clamping v first


#: multipliers tried on each side of fl(1/θ), in ulps, for an exact level estimate
_SEARCH_ULPS = 64


@functools.lru_cache(maxsize=256)
def fire_constants(threshold: float, levels: int, dtype: torch.dtype) -> FireConstants:
    """The constants of ``staircase`` for ``(θ, L)`` in ``dtype`` (see ``FireConstants``).

    Exact estimate: ``v ↦ ⌊fl(v·c)⌋`` is monotone, like the level ``k(v)``, so the two agree on all of
    ``[0, fl(Lθ)]`` as soon as they agree at each boundary ``b_k = fl(kθ)`` and at the float just below
    it: ``fl(b_k·c) ≥ k > fl(prev(b_k)·c)`` for ``k = 1..L`` and ``fl(b_L·c) < L + 1``. θ a power of two
    passes with ``c = 1/θ``; otherwise the multipliers within ``_SEARCH_ULPS`` ulps of ``fl(1/θ)`` are
    tried, nearest first (one exists for most θ when L ≤ 4).
    Fallback: ``c`` = ``fl(1/θ)`` moved down by 8 ulps, at most ``(1 − 5u)/θ`` (``u`` the unit
    round-off), so for ``v < fl((k+1)θ) ≤ (k+1)θ(1 + u)`` the rounded product stays below ``k + 1``, and
    it is at least ``k(1 − 20u) > k − 1`` for ``v ≥ fl(kθ)``: the estimate is k or k − 1.
    """
    theta = torch.tensor(threshold, dtype=dtype)
    ks = torch.arange(1, levels + 1, dtype=dtype)
    bounds = ks * theta  # b_k = fl(kθ), k = 1..L
    top = bounds[-1]
    inverse = torch.tensor(1.0, dtype=dtype) / theta
    if math.frexp(float(theta))[0] == 0.5:  # θ = 2^e: v·2^-e is exact
        return FireConstants(float(theta), float(top), float(inverse), True, float(top * inverse))
    below = torch.nextafter(bounds, torch.zeros_like(bounds))
    up, down = [inverse], [inverse]
    for _ in range(_SEARCH_ULPS):
        up.append(torch.nextafter(up[-1], torch.tensor(torch.inf, dtype=dtype)))
        down.append(torch.nextafter(down[-1], torch.zeros_like(inverse)))
    candidates = torch.stack([c for pair in zip(up, down, strict=True) for c in pair][1:])  # nearest first
    at, before = bounds * candidates[:, None], below * candidates[:, None]  # fl(b_k·c), fl(prev(b_k)·c)
    ok = (at >= ks).all(1) & (before < ks).all(1) & (top * candidates < levels + 1)
    if bool(ok.any()):
        best = candidates[ok][0]
        return FireConstants(float(theta), float(top), float(best), True, float(top * best))
    return FireConstants(float(theta), float(top), float(down[8]), False, float(top * down[8]))


def staircase(v: torch.Tensor, threshold: float, levels: int) -> torch.Tensor:
    """Eq. 7 with the authors' boundary rule: ``s = fl(k·θ)``, ``k = max{k ∈ 0..L : v ≥ fl(k·θ)}``.

    No per-level pass and no float division: ``k`` is ``⌊clamp(v, 0, fl(Lθ)) · c⌋`` with a multiplier
    ``c`` near ``1/θ`` checked at every boundary (``fire_constants``: θ a power of two, and most other θ
    for small L), else that estimate with ``c`` just below ``1/θ``, which is ``k`` or ``k − 1``,
    corrected by one comparison with ``fl((k̂+1)·θ)``. Every backend computes these ops
    (``staircase_from_constants``), so spikes are bit-identical across backends for any θ.

    Args:
        v: membrane, any shape. threshold: θ > 0. levels: L ≥ 1.
    Returns:
        spikes of ``v``'s shape and dtype, values in ``{fl(k·θ) : k = 0..L}``.
    """
    return staircase_from_constants(v, fire_constants(threshold, levels, v.dtype), levels)


def staircase_from_constants(v: torch.Tensor, c: FireConstants, levels: int) -> torch.Tensor:
    """``staircase`` with its constants looked up already (``fire_constants(θ, L, v.dtype)``); pure
    tensor ops, so ``torch.compile`` traces it whole."""
    if levels == 1:  # one comparison: v >= fl(θ)
        spikes = (v >= c.threshold).to(v.dtype)
        return spikes if c.threshold == 1.0 else spikes * c.threshold
    if c.exact:  # ⌊clamp(v·c, 0, fl(top·c))⌋ = ⌊fl(clamp(v, 0, top)·c)⌋: rounding is monotone
        scaled = v if c.inverse == 1.0 else v * c.inverse
        level = torch.floor(torch.clamp(scaled, 0.0, c.top_scaled))
    else:
        clipped = torch.clamp(v, 0.0, c.top)
        level = torch.floor(clipped * c.inverse)
        level = level + (clipped >= (level + 1.0) * c.threshold).to(v.dtype)
    return level if c.threshold == 1.0 else level * c.threshold


class _MultiLevelFire(torch.autograd.Function):
    """``staircase(v)`` forward; surrogate ``ds/dv`` backward."""

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
    """Multi-level firing of Eq. 7 with a surrogate gradient: values ``{0, fl(θ), …, fl(Lθ)}``."""
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
        v: ``[B, ...]`` membrane after the previous reset; detached here unless ``params.bptt``.
        params: levels L, threshold θ, v_init (unused here), bptt.
        leak: λ_t, a scalar (tensor, may require grad) or float.
    Returns:
        ``(s_t, v_t)``: spikes ``{0, θ, …, Lθ}`` and the membrane after the soft reset (whose reset
        term carries the surrogate gradient under BPTT and is detached otherwise).
    """
    if not params.bptt:
        v = v.detach()
    # the fused kernel's ops (add / addcmul), so both paths round identically
    if isinstance(leak, torch.Tensor):
        v = torch.addcmul(current, v, leak)
    else:
        v = current + v if leak == 1.0 else torch.addcmul(current, v, torch.tensor(leak, dtype=v.dtype))
    spike = fire(v, params.threshold, params.levels, surrogate)
    return spike, v - (spike if params.bptt else spike.detach())


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
        params: L, θ, v_init, bptt.
        tgim: ``[T, T]`` Ω or None (no mixing).
        leak_seq: ``[T]`` per-step leak λ_t, or None for λ = 1.
        return_state: also return the final membrane ``[B, ...]`` (detached).
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
