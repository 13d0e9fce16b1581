"""Multi-step neuron kernels: the backend registry and the built-in backends.

A backend computes the whole multi-step neuron of ``lmht.functional`` in one call::

    backend(x_seq [T, ...], params, tgim [T, T] | None, leak_seq [T] | None, surrogate)
        -> (spikes [T, ...], final membrane [...])

with the spikes of ``plain`` bit for bit and its gradients to round-off, under STBP (LM-HT) and BPTT
(``params.bptt``, the IF baseline) alike:

``plain``    the per-step autograd graph of ``lmht.functional.lmht_multistep_plain`` (the reference).
``torch``    ``lmht.kernels.fused``: one ``autograd.Function`` over the whole time loop, ATen ops,
             chunked over neurons, saving only the input and the spikes.
``compile``  ``lmht.kernels.compiled``: the same maths compiled by ``torch.compile`` (any device;
             compiles each specialisation on first use).
``triton``   ``lmht.kernels.triton_backend``: Triton kernels; registered only when CUDA and triton are
             importable; calls outside its scope (CPU, non-float32, other surrogates) run ``torch``.
``auto``     ``lmht.kernels.auto``: the fastest of ``torch``/``triton`` measured correct on the device
             on first use (cached per device); the default of every neuron built without ``backend=``.

Imports go one way: this package imports its modules and registers the backends; ``registry`` and
``layout`` are leaves, the backend modules import only leaves (and ``lmht.functional``/``surrogate``).
Choose a backend with ``set_default_backend(name)``, a neuron's ``backend=`` argument or the
``backend`` config key.
"""

from __future__ import annotations

import torch

from lmht.functional import NeuronParams, lmht_multistep_plain
from lmht.kernels import compiled, triton_backend
from lmht.kernels.auto import auto_backend, clear_auto_cache, lmht_auto
from lmht.kernels.fused import lmht_fused
from lmht.kernels.registry import (
    Backend,
    default_backend,
    get_backend,
    list_backends,
    register_backend,
    set_default_backend,
)

__all__ = [
    "Backend",
    "auto_backend",
    "clear_auto_cache",
    "default_backend",
    "get_backend",
    "list_backends",
    "lmht_fused",
    "register_backend",
    "set_default_backend",
]


def _plain(x_seq, params: NeuronParams, tgim=None, leak_seq=None, surrogate=None):
    return lmht_multistep_plain(x_seq, params, tgim, leak_seq, surrogate, return_state=True)


def _triton(x_seq, params: NeuronParams, tgim=None, leak_seq=None, surrogate=None):
    """``triton`` where its kernels run (``triton_backend.runs_here``), ``torch`` elsewhere."""
    if triton_backend.runs_here(x_seq, surrogate):
        return triton_backend.lmht_triton(x_seq, params, tgim, leak_seq, surrogate)
    return lmht_fused(x_seq, params, tgim, leak_seq, surrogate)


register_backend("plain", _plain)
register_backend("torch", lmht_fused)
register_backend("compile", compiled.lmht_compiled)
if triton_backend.triton is not None and torch.cuda.is_available():
    register_backend("triton", _triton)
register_backend("auto", lmht_auto)
