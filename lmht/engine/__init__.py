"""Training and evaluation engine behind the ``lmht`` CLI: :func:`run` runs one prepared configuration.

Modes (declared in :mod:`lmht.experiment.modes`; see ``lmht --help`` and the spec's "Training modes"):

``ann``      train a ReLU (``levels = 0``) or QCFS (``levels = Q``) ANN with cross-entropy.
``convert``  QCFS ANN checkpoint -> IF SNN (``qcfs_to_if``), accuracy of the cumulative output after each
             of ``convert_steps`` steps; no training.
``hybrid``   QCFS ANN checkpoint -> LM-HT SNN (``qcfs_to_lmht``), evaluate, STBP fine-tune.
``direct``   ReLU ANN -> SNN (``build_snn``) trained from scratch with STBP (``neuron: relu|qcfs`` trains
             the ANN instead).
``reparam``  LM-HT SNN checkpoint -> single-threshold SNN over T·L steps (``reparameterize``); evaluate
             both and their prediction agreement.

SNN loss: cross-entropy of the time-mean logits (the model returns ``[T, B, classes]``).

Modules: ``context`` (device, DDP, seeds, RNG, versions), ``data`` (loaders), ``evaluate``, ``trainer``
(optimizer, schedule, checkpoints, resume), ``runs`` (one function per mode, outputs).
"""

from .context import NonFiniteLossError, RunError
from .runs import run

__all__ = ["NonFiniteLossError", "RunError", "run"]
