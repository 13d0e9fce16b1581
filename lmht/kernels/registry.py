"""The backend registry: name -> multi-step neuron function (a leaf: imports nothing of ``lmht``).

Every backend has one signature::

    backend(x_seq [T, ...], params: NeuronParams, tgim [T, T] | None, leak_seq [T] | None, surrogate)
        -> (spikes [T, ...], final membrane [...])

and returns the spikes of the ``plain`` path bit for bit (gradients equal to float round-off).
``lmht.kernels`` registers the built-in backends; register your own with ``register_backend`` (then
``tests/test_backends.py`` checks it against ``plain`` when it is registered at import).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["Backend", "default_backend", "get_backend", "list_backends", "register_backend",
           "set_default_backend"]

Backend = Callable[..., tuple[torch.Tensor, torch.Tensor]]
_BACKENDS: dict[str, Backend] = {}
#: the backend of every neuron built without ``backend=``; ``auto`` measures on first use per device
_DEFAULT = ["auto"]


def register_backend(name: str, fn: Backend) -> Backend:
    """Register ``fn`` under ``name`` (replacing an earlier registration of that name)."""
    _BACKENDS[name] = fn
    return fn


def list_backends() -> list[str]:
    return sorted(_BACKENDS)


def get_backend(name: str | None = None) -> Backend:
    """The backend registered as ``name`` (None: the current default, ``auto`` unless changed)."""
    key = _DEFAULT[0] if name is None else name
    try:
        return _BACKENDS[key]
    except (KeyError, TypeError):
        raise ValueError(f"backend: unknown or unavailable {key!r}; available: {list_backends()}") from None


def default_backend() -> str:
    """Name of the backend that neurons built without ``backend=`` use."""
    return _DEFAULT[0]


def set_default_backend(name: str) -> None:
    """Make ``name`` the backend of every neuron built without an explicit ``backend``."""
    get_backend(name)
    _DEFAULT[0] = name
