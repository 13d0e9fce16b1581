"""Named variants: every place where this project offers something other than the paper's method.

**The default of every variant is the paper's method** (the authors' code where the paper is silent).
Each alternative is our own idea (often a better one), selected explicitly by a config key of the
``lmht`` CLI, recorded in every ``metrics.json`` (``variants``), and named in the folder of every
workflow cell that uses it (``+TAG`` suffixes, see :mod:`lmht.experiment.cell`). A grid of a suite
can sweep a variant (``variants: {tgim_param: [sigmoid, direct]}``), which turns it into a research
question the suite answers. The fidelity ledger (``docs/fidelity.md``) lists each with its evidence.

To add a variant: one :func:`declare_variant` call here (key, paper default, alternatives with their
tags, which cells it applies to), a key in ``lmht/configs/default.yaml``, and the builder in
``lmht/build.py`` that reads it; the schema, the CLI help, cell names and tables follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["VARIANTS", "Variant", "declare_variant", "variant_tag"]


@dataclass(frozen=True)
class Variant:
    """One config key whose default is the paper's method and whose other values are ours.

    Attributes:
        key: the ``lmht`` config key (and the key in ``metrics.json`` ``variants``).
        default: the paper's method.
        alternatives: our variants, ``{value: tag}``; the tag names the value in cell folders.
        help: what the key chooses (CLI help, schema description, report glossary).
        paper: where the default comes from (paper section / the authors' code).
        applies: ``applies(cell) -> bool``: whether the key changes what a workflow cell computes.
    """

    key: str
    default: str
    alternatives: dict[str, str]
    help: str
    paper: str
    applies: Callable[[Any], bool] = field(repr=False, compare=False, default=lambda cell: True)

    @property
    def choices(self) -> tuple[str, ...]:
        return (self.default, *self.alternatives)


VARIANTS: dict[str, Variant] = {}


def declare_variant(
    key: str,
    default: str,
    alternatives: dict[str, str],
    help: str,
    paper: str,
    applies: Callable[[Any], bool],
) -> Variant:
    """Declare a variant once (module level). Tags must be unique across variants (cell names parse)."""
    if key in VARIANTS:
        raise ValueError(f"variant {key!r} is declared twice")
    used = {tag for v in VARIANTS.values() for tag in v.alternatives.values()}
    for tag in alternatives.values():
        if tag in used or not tag.replace("-", "").isalnum() or not tag.islower():
            raise ValueError(f"variant tag {tag!r}: must be unique, lower case, letters/digits/-")
    VARIANTS[key] = Variant(key, default, dict(alternatives), help, paper, applies)
    return VARIANTS[key]


def variant_tag(key: str, value: str) -> str:
    """The cell-name tag of a non-default value."""
    return VARIANTS[key].alternatives[value]


# The variants of this suite. ``applies`` sees a :class:`lmht.experiment.cell.Cell`.
declare_variant(
    "tgim_param",
    default="sigmoid",
    alternatives={"direct": "direct-tgim"},
    help="T-GIM parametrization: sigmoid = Ω = (2/T)·σ(ω), bounded in (0, 2/T), ω = 0 at start (the "
    "paper's); direct = Ω is the parameter itself (unbounded; represents identity and any init exactly)",
    paper="§4.3; authors' modules.py LMHTNeuron (mask, 2·sigmoid/T)",
    applies=lambda cell: cell.tgim not in (None, "none"),
)
declare_variant(
    "hybrid_init",
    default="algorithm1",
    alternatives={"exact": "exact-init"},
    help="hybrid initialization: algorithm1 = only the first neuron layer's input × L (the paper's "
    "Algorithm 1); exact = every later constant term (bias, BN) × L too, so that with Q = T·L the SNN "
    "starts from exactly the QCFS ANN's function",
    paper="§4.5 Algorithm 1; authors' hybrid_train.py (scale of the first neuron only)",
    applies=lambda cell: cell.mode == "hybrid" or (cell.mode == "reparam" and cell.source == "hybrid"),
)
declare_variant(
    "if_gradient",
    default="bptt",
    alternatives={"detached": "detached-if"},
    help="gradient of the single-threshold IF/LIF baseline: bptt = through the membrane and the reset "
    "(the authors' IFNeuron); detached = recurrence and reset detached, as in LM-HT's STBP",
    paper="authors' modules.py IFNeuron (nothing detached)",
    applies=lambda cell: cell.mode == "direct" and cell.neuron in ("if", "lif"),
)
declare_variant(
    "frame_input",
    default="mean",
    alternatives={"bins": "frame-bins"},
    help="event datasets: mean = all F frames averaged into one input that the first neuron layer's "
    "T-GIM spreads over T (the authors'); bins = T contiguous bins of F/T frames, one per step",
    paper="authors' models/ResNet.py use_dvs",
    applies=lambda cell: cell.mode != "ann",
)
