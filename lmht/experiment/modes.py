"""The run modes of the ``lmht`` CLI, declared once.

Each mode is one :func:`declare_mode` call (like timm's three-line model entry points): its name, the
help the CLI prints, the Snakemake rule that runs its cells, the checkpoint it builds on (a config key,
and which modes may have written that checkpoint), the config keys it inherits from that checkpoint, and
its default job resources. The CLI, the engine, the config schema and the workflow all read this table.

Torch-free on purpose: ``workflow/rules/common.smk`` imports it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANN_NETWORK_KEYS", "MODES", "SNN_NETWORK_KEYS", "Mode", "declare_mode", "get_mode"]

#: Config keys that define the network of an ANN checkpoint; runs built on it inherit them.
ANN_NETWORK_KEYS = ("dataset", "arch", "model_options", "levels", "qcfs_threshold")
#: The same for an SNN checkpoint (direct or hybrid run), which a reparameterization rebuilds.
SNN_NETWORK_KEYS = (
    *ANN_NETWORK_KEYS,
    "neuron",
    "L",
    "T",
    "threshold",
    "v_init",
    "tgim_init",
    "learn_tgim",
    "tgim_param",
    "leak",
    "learn_leak",
    "surrogate",
    "frames",
    "hybrid_init",
    "if_gradient",
    "frame_input",
)


@dataclass(frozen=True)
class Mode:
    """One mode of the CLI (``lmht NAME ...``) and of the workflow's cells.

    Attributes:
        name: CLI subcommand and ``metrics.json`` ``mode``.
        help: one line for ``lmht --help``.
        rule: name of the Snakemake rule that runs cells of this mode.
        parent_key: config key holding the checkpoint this mode builds on (None: trains from scratch).
        parent_modes: modes whose checkpoints ``parent_key`` accepts.
        inherits: config keys taken from the parent checkpoint's config before validation.
        trains: whether the mode runs an optimizer (else it only evaluates).
        runtime: default job wall time in minutes (a suite's ``resources`` override it).
        mem_mb: default job memory.
    """

    name: str
    help: str
    rule: str
    parent_key: str | None = None
    parent_modes: tuple[str, ...] = ()
    inherits: tuple[str, ...] = ()
    trains: bool = True
    runtime: int = 60
    mem_mb: int = 4000


MODES: dict[str, Mode] = {}


def declare_mode(name: str, help: str, rule: str, **fields) -> Mode:
    """Declare a mode (module level, once per mode); returns it. The order of declaration is the CLI's."""
    if name in MODES:
        raise ValueError(f"mode {name!r} is declared twice")
    mode = Mode(name, help, rule, **fields)
    MODES[name] = mode
    return mode


def get_mode(name: str) -> Mode:
    """The declared mode ``name``; ValueError naming the known modes otherwise."""
    try:
        return MODES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown mode {name!r} (one of {', '.join(MODES)})") from None


declare_mode("ann", "train a ReLU (levels=0) or QCFS (levels=Q) ANN", rule="train_ann")
declare_mode(
    "convert",
    "QCFS ANN checkpoint -> IF SNN; accuracy after each of convert_steps steps (no training)",
    rule="convert_eval",
    parent_key="ann_checkpoint",
    parent_modes=("ann", "direct"),
    inherits=ANN_NETWORK_KEYS,
    trains=False,
    runtime=30,
)
declare_mode(
    "hybrid",
    "QCFS ANN checkpoint -> LM-HT SNN (hybrid initialization), then STBP fine-tuning",
    rule="finetune_hybrid",
    parent_key="ann_checkpoint",
    parent_modes=("ann", "direct"),
    inherits=ANN_NETWORK_KEYS,
)
declare_mode(
    "direct",
    "STBP training from scratch (neuron lmht|mht|if|lif; relu|qcfs trains the ANN)",
    rule="train_direct",
)
declare_mode(
    "reparam",
    "LM-HT SNN checkpoint -> single-threshold SNN over T*L steps; evaluate both",
    rule="reparam_eval",
    parent_key="snn_checkpoint",
    parent_modes=("direct", "hybrid"),
    inherits=SNN_NETWORK_KEYS,
    trains=False,
    runtime=30,
)
