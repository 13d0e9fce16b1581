"""Surrogate gradients for multi-level firing, looked up by name.

The forward pass of a (multi-level) spiking neuron is the staircase ``s(v) = fl(k·θ)`` for the
highest ``k ≤ L`` with ``v ≥ fl(k·θ)`` (``lmht.functional.staircase``; ``θ·clamp(⌊v/θ⌋, 0, L)`` away
from the boundaries); its derivative is zero almost everywhere, so STBP replaces ``ds/dv`` by a
surrogate. LM-HT (Hao et al., 2024, Sec. 4.3) uses the rectangular window
``ds/dv = 1`` on ``[0.5θ, (L + 0.5)θ]``: the straight line through the centres of the steps.

Each surrogate is a small object with ``grad(v, threshold, levels) -> ds/dv`` (same shape as ``v``)
and a flag ``binary`` saying whether the derivative only takes the values 0 and 1, in which case the
fused kernels save it as a boolean mask instead of the float membrane.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Surrogate", "create_surrogate", "list_surrogates", "register_surrogate"]


@dataclass(frozen=True)
class Surrogate:
    """A surrogate derivative ``ds/dv`` for the L-level staircase.

    Attributes:
        name: registry key.
        binary: True if ``grad`` only returns 0 or 1 (then it is fully described by ``window``).
        grad_fn: ``(v, threshold, levels) -> ds/dv``.
    """

    name: str
    binary: bool
    grad_fn: Callable[[torch.Tensor, float, int], torch.Tensor]

    def grad(self, v: torch.Tensor, threshold: float, levels: int) -> torch.Tensor:
        return self.grad_fn(v, threshold, levels)

    @staticmethod
    def window(threshold: float, levels: int) -> tuple[float, float]:
        """Closed interval ``[0.5θ, (L + 0.5)θ]`` where the rectangular surrogate is 1."""
        return 0.5 * threshold, (levels + 0.5) * threshold


_REGISTRY: dict[str, Surrogate] = {}


def register_surrogate(surrogate: Surrogate) -> Surrogate:
    if surrogate.name in _REGISTRY:
        raise ValueError(f"surrogate {surrogate.name!r} is already registered")
    _REGISTRY[surrogate.name] = surrogate
    return surrogate


def create_surrogate(name: str | Surrogate) -> Surrogate:
    """Return the surrogate registered under ``name`` (a ``Surrogate`` passes through)."""
    if isinstance(name, Surrogate):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"surrogate: unknown name {name!r}; expected one of {sorted(_REGISTRY)}") from None


def list_surrogates() -> list[str]:
    return sorted(_REGISTRY)


def _rectangle(v: torch.Tensor, threshold: float, levels: int) -> torch.Tensor:
    lo, hi = Surrogate.window(threshold, levels)
    return ((v >= lo) & (v <= hi)).to(v.dtype)


def _triangle(v: torch.Tensor, threshold: float, levels: int) -> torch.Tensor:
    # One tent per level k, centred on kθ, support [(k-½)θ, (k+½)θ], height 2: each tent integrates to
    # θ, like the rectangle over one level. Sum over levels without a Python loop: distance to the
    # nearest level centre inside the window.
    u = v / threshold
    nearest = torch.clamp(torch.round(u), 1, levels)
    tent = 2.0 * torch.clamp(1.0 - 2.0 * (u - nearest).abs(), min=0.0)
    return tent


def _sigmoid(v: torch.Tensor, threshold: float, levels: int, alpha: float = 4.0) -> torch.Tensor:
    # Derivative of a smooth staircase: a sigmoid step at each level centre kθ (k = 1..L), each of
    # slope α/θ at its centre scaled so that it integrates to θ. Nearest-level approximation keeps it
    # vectorised (the neighbouring steps' tails are below 2% for α = 4).
    u = v / threshold
    nearest = torch.clamp(torch.round(u), 1, levels)
    sig = torch.sigmoid(alpha * (u - nearest))
    return alpha * sig * (1.0 - sig)


register_surrogate(Surrogate("rectangle", binary=True, grad_fn=_rectangle))
register_surrogate(Surrogate("triangle", binary=False, grad_fn=_triangle))
register_surrogate(Surrogate("sigmoid", binary=False, grad_fn=_sigmoid))
