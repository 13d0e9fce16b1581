"""Optional multi-step neuron backends, registered into ``lmht.kernels``' registry when usable.

Every backend has the signature of ``lmht.kernels``::

    backend(x_seq [T, ...], params, tgim [T, T] | None, leak_seq [T] | None, surrogate)
        -> (spikes [T, ...], final membrane [...])

and returns the spikes of the plain path bit for bit (gradients to float round-off). The update they
all compute is LM-HT's (Hao et al., NeurIPS 2024, Eqs. 5-8)::

    I = Ω x;   v_t = λ_t v_{t-1} + I_t;   s_t = θ clamp(⌊v_t / θ⌋, 0, L);   v_t -= s_t

``compile``  ``lmht.backends.compiled``: the fused forward and backward of the ``torch`` backend
             written as pure functions and compiled by ``torch.compile`` (inductor): the T-step
             recurrence becomes one loop over neurons with ``v`` in registers. Always registered;
             compiles on first use (CPU needs a C++ compiler, CUDA needs triton).
``triton``   ``lmht.backends.triton_backend``: hand-written Triton kernels, one program per block of
             neurons keeping ``v`` in registers across all T steps; Ω applied as cuBLAS matmuls before
             and after. Registered only when CUDA and triton are both importable; tensors that are not
             on a CUDA device fall back to the ``torch`` backend.

Choose one with ``lmht.kernels.set_default_backend(name)``, a neuron's ``backend=`` argument, or
the ``backend`` config key of the CLI; ``auto_backend(device)`` names the fastest one for a device.
"""

from __future__ import annotations

import torch

from lmht.backends import compiled, triton_backend
from lmht.kernels import list_backends

__all__ = ["auto_backend", "compiled", "triton_backend"]


def auto_backend(device: torch.device | str) -> str:
    """The fastest registered backend for ``device``: ``triton`` on CUDA when registered, else ``torch``.

    (``compile`` is not picked automatically: its first use per specialisation compiles for seconds.)
    """
    if torch.device(device).type == "cuda" and "triton" in list_backends():
        return "triton"
    return "torch"
