"""LM-HT: Learnable Multi-hierarchical Threshold spiking neurons (Hao et al., NeurIPS 2024).

Library layout: ``surrogate`` / ``functional`` (pure maths) -> ``kernels`` (fused backends) ->
``neurons`` (modules) -> ``layers`` / ``network`` (multi-step plumbing) -> ``convert`` (QCFS, hybrid
initialization, reparameterization) -> ``models``, ``data``, ``engine``, ``cli``.
"""

__version__ = "0.1.0"
