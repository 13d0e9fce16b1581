"""A *cell*: one run of the ``lmht`` CLI in the workflow, named by its folder.

A cell lives in ``{results}/{suite}/runs/{dataset}/{arch}/{name}/seed{seed}/`` where ``name`` is

    ann_Q{Q}                                    QCFS ANN (shared by every convert/hybrid cell with this Q)
    convert-Q{Q}_L1_T{T}_none                   QCFS -> IF conversion, accuracy after each step up to T
    hybrid-Q{Q}_L{L}_T{T}_{tgim}                LM-HT from the QCFS ANN, STBP fine-tuned
    direct-{neuron}_L{L}_T{T}_{tgim}            direct STBP (lmht | mht | if | lif; tgim "none" without T-GIM)
    reparam-{source}_L{L}_T{T}_{tgim}           single-threshold reparameterization of the cell
                                                {source}_L{L}_T{T}_{tgim} (source direct-lmht, hybrid-Q{Q})

followed by ``+TAG`` for every non-default variant (:mod:`lmht.experiment.variants`), e.g.
``direct-lmht_L2_T2_identity+direct-tgim``. :class:`Cell` builds, parses and canonicalizes these names;
the Snakemake wildcard constraints come from :data:`WILDCARD_PATTERNS` and :func:`cell_pattern`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from .modes import MODES
from .variants import VARIANTS

__all__ = ["NEURONS", "TGIM_INITS", "WILDCARD_PATTERNS", "Cell", "cell_pattern"]

#: Neurons of direct cells (lmht.neurons registry names).
NEURONS = ("lmht", "mht", "if", "lif")
#: T-GIM initializations of LM-HT cells ("none": a cell without T-GIM).
TGIM_INITS = ("uniform", "identity", "random")
#: Neurons without a T-GIM.
_NO_TGIM = ("mht", "if", "lif")

_INT = r"[1-9][0-9]*"
_TAGS = r"(?:\+[a-z0-9-]+)*"
#: Regex of the cell-name part of each mode (Snakemake wildcard constraint of the ``cell`` wildcard).
_MODE_PATTERNS = {
    "ann": rf"ann_Q{_INT}",
    "convert": rf"convert-Q{_INT}_L1_T{_INT}_none{_TAGS}",
    "hybrid": rf"hybrid-Q{_INT}_L{_INT}_T{_INT}_[a-z]+{_TAGS}",
    "direct": rf"direct-(?:{'|'.join(NEURONS)})_L{_INT}_T{_INT}_[a-z]+{_TAGS}",
    "reparam": rf"reparam-(?:direct-(?:lmht|mht)|hybrid-Q{_INT})_L{_INT}_T{_INT}_[a-z]+{_TAGS}",
}
#: Wildcard constraints of the other path parts.
WILDCARD_PATTERNS = {"seed": r"[0-9]+"}
_NAME = re.compile(
    r"(?P<prefix>[a-z]+(?:-[a-z]+)*(?:-Q(?P<pq>\d+))?)"
    r"(?:_Q(?P<q>\d+)|_L(?P<L>\d+)_T(?P<T>\d+)_(?P<tgim>[a-z]+))(?P<tags>(?:\+[a-z0-9-]+)*)"
)


def cell_pattern(mode: str | None = None) -> str:
    """Regex that matches exactly the cell names of ``mode`` (None: of every mode)."""
    if mode is None:
        return "|".join(f"(?:{p})" for p in _MODE_PATTERNS.values())
    return _MODE_PATTERNS[mode]


@dataclass(frozen=True)
class Cell:
    """One cell: what it computes is a function of these fields (and the suite's settings).

    Attributes:
        dataset, arch: registry names (``lmht.data``, ``lmht.models``).
        mode: ``ann | convert | hybrid | direct | reparam`` (:mod:`lmht.experiment.modes`).
        seed: training seed.
        L, T: levels and time steps (None for an ANN; convert cells have L = 1 and T = the curve's end).
        tgim: T-GIM initialization, or ``"none"`` for cells without a T-GIM.
        Q: QCFS levels of the ANN (ann, convert, hybrid, reparam of a hybrid cell), else None.
        neuron: direct cells (and reparam of direct cells: ``lmht``/``mht``), else None.
        source: reparam cells: ``"direct"`` or ``"hybrid"``, else None.
        variants: non-default variant values that apply to this cell, ``((key, value), ...)`` in the
            declaration order of :data:`lmht.experiment.variants.VARIANTS` (use :meth:`make`).
    """

    dataset: str
    arch: str
    mode: str
    seed: int = 0
    L: int | None = None
    T: int | None = None
    tgim: str = "none"
    Q: int | None = None
    neuron: str | None = None
    source: str | None = None
    variants: tuple[tuple[str, str], ...] = ()

    # ------------------------------------------------------------------ construction
    @classmethod
    def make(cls, dataset: str, arch: str, mode: str, seed: int = 0, variants=None, **fields) -> Cell:
        """A canonical cell: checks the fields of ``mode``, fills the fixed ones, keeps only the variants
        that differ from the paper's default and apply to this cell. A T-GIM initialization that the
        default (sigmoid) parametrization cannot represent (identity) selects ``tgim_param=direct``."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
        f = {"L": None, "T": None, "tgim": "none", "Q": None, "neuron": None, "source": None, **fields}
        if mode == "ann":
            f.update(L=None, T=None, tgim="none", neuron=None, source=None)
        elif mode == "convert":
            f.update(L=1, tgim="none", neuron=None, source=None)
        elif mode == "direct":
            if f["neuron"] not in NEURONS:
                raise ValueError(f"direct cell: neuron must be one of {NEURONS}, got {f['neuron']!r}")
            f.update(Q=None, source=None)
            if f["neuron"] in _NO_TGIM:
                f["tgim"] = "none"
        elif mode == "reparam":
            if f["source"] not in ("direct", "hybrid"):
                raise ValueError(f"reparam cell: source must be direct or hybrid, got {f['source']!r}")
            f["neuron"] = (f["neuron"] or "lmht") if f["source"] == "direct" else None
            if f["source"] == "direct":
                f["Q"] = None
        else:  # hybrid
            f.update(neuron=None, source=None)
        if f["neuron"] == "mht":
            f["tgim"] = "none"
        cell = cls(dataset, arch, mode, int(seed), **f)
        cell._check()
        chosen = dict(variants or {})
        unknown = sorted(set(chosen) - set(VARIANTS))
        if unknown:
            raise ValueError(f"unknown variant key(s) {unknown}; known: {', '.join(VARIANTS)}")
        if cell.tgim == "identity" and "tgim_param" in VARIANTS:
            chosen["tgim_param"] = "direct"  # Ω = 2σ(ω)/T cannot be the identity for T >= 2
        kept = []
        for key, variant in VARIANTS.items():
            value = chosen.get(key, variant.default)
            if value not in variant.choices:
                raise ValueError(f"variant {key}: {value!r} is not one of {variant.choices}")
            if value != variant.default and variant.applies(cell):
                kept.append((key, value))
        return replace(cell, variants=tuple(kept))

    def _check(self) -> None:
        for name in ("L", "T", "Q"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.mode != "ann" and (self.L is None or self.T is None):
            raise ValueError(f"{self.mode} cell needs L and T")
        if self.mode in ("ann", "convert", "hybrid") and self.Q is None:
            raise ValueError(f"{self.mode} cell needs Q")
        if self.mode == "reparam" and self.source == "hybrid" and self.Q is None:
            raise ValueError("reparam cell of a hybrid source needs Q")
        if self.tgim != "none" and self.tgim not in TGIM_INITS:
            raise ValueError(f"tgim must be one of {TGIM_INITS} or 'none', got {self.tgim!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    # ------------------------------------------------------------------ names
    @property
    def prefix(self) -> str:
        """The method part of the name: ``ann``, ``convert-Q8``, ``direct-lmht``, ``reparam-hybrid-Q4``..."""
        if self.mode == "ann":
            return "ann"
        if self.mode in ("convert", "hybrid"):
            return f"{self.mode}-Q{self.Q}"
        if self.mode == "direct":
            return f"direct-{self.neuron}"
        return "reparam-" + (f"direct-{self.neuron}" if self.source == "direct" else f"hybrid-Q{self.Q}")

    @property
    def method(self) -> str:
        """The method without its Q: ``ann``, ``convert``, ``hybrid``, ``direct-lmht``, ``reparam-hybrid``."""
        return re.sub(r"-Q\d+$", "", self.prefix)

    @property
    def name(self) -> str:
        """Folder name (see the module docstring)."""
        if self.mode == "ann":
            return f"ann_Q{self.Q}"
        tags = "".join(f"+{VARIANTS[k].alternatives[v]}" for k, v in self.variants)
        return f"{self.prefix}_L{self.L}_T{self.T}_{self.tgim}{tags}"

    def variant(self, key: str) -> str:
        """The value of variant ``key`` in this cell (the paper's default unless listed)."""
        return dict(self.variants).get(key, VARIANTS[key].default)

    def folder(self, results: str | Path, suite: str) -> Path:
        """``{results}/{suite}/runs/{dataset}/{arch}/{name}/seed{seed}``."""
        return Path(results) / suite / "runs" / self.dataset / self.arch / self.name / f"seed{self.seed}"

    def path(self, results: str | Path, suite: str) -> Path:
        """The cell's ``metrics.json`` (the workflow's target for this cell)."""
        return self.folder(results, suite) / "metrics.json"

    @classmethod
    def parse(cls, name: str, dataset: str, arch: str, seed: int | str = 0) -> Cell:
        """The cell of folder ``name`` (inverse of :attr:`name`); ValueError for a malformed name."""
        m = _NAME.fullmatch(name)
        if m is None or not re.fullmatch(cell_pattern(), name):
            raise ValueError(f"not a cell name: {name!r}")
        tags = {tag: (key, value) for key, v in VARIANTS.items() for value, tag in v.alternatives.items()}
        chosen = {}
        for tag in filter(None, m["tags"].split("+")):
            if tag not in tags:
                raise ValueError(f"cell {name!r}: unknown variant tag {tag!r}")
            key, value = tags[tag]
            chosen[key] = value
        prefix = m["prefix"]
        q = m["q"] or m["pq"]
        fields = {"Q": int(q) if q else None}
        if m["L"]:
            fields.update(L=int(m["L"]), T=int(m["T"]), tgim=m["tgim"])
        base = re.sub(r"-Q\d+$", "", prefix)
        if base == "ann":
            mode = "ann"
        elif base in ("convert", "hybrid"):
            mode = base
        elif base.startswith("direct-"):
            mode, fields["neuron"] = "direct", base.split("-", 1)[1]
        elif base.startswith("reparam-"):
            mode = "reparam"
            src = base.split("-", 1)[1]
            fields["source"] = "hybrid" if src == "hybrid" else "direct"
            if fields["source"] == "direct":
                fields["neuron"] = src.split("-", 1)[1]
        else:
            raise ValueError(f"not a cell name: {name!r}")
        cell = cls.make(dataset, arch, mode, int(seed), variants=chosen, **fields)
        if cell.name != name:
            raise ValueError(f"cell name {name!r} is not canonical (expected {cell.name!r})")
        return cell

    @classmethod
    def from_path(cls, path: str | Path) -> Cell:
        """The cell of ``.../runs/{dataset}/{arch}/{name}/seed{seed}[/file]``."""
        parts = Path(path).parts
        if parts and not parts[-1].startswith("seed"):
            parts = parts[:-1]
        if len(parts) < 4 or not re.fullmatch(r"seed\d+", parts[-1]):
            raise ValueError(f"not a cell path: {path}")
        return cls.parse(parts[-2], parts[-4], parts[-3], parts[-1][4:])

    # ------------------------------------------------------------------ relations
    def parent(self) -> Cell | None:
        """The cell whose checkpoint this one builds on: the ANN of convert/hybrid cells, the trained
        cell of a reparam cell; None for cells trained from scratch."""
        keep = dict(self.variants)
        if self.mode in ("convert", "hybrid"):
            return Cell.make(self.dataset, self.arch, "ann", self.seed, Q=self.Q)
        if self.mode == "reparam":
            if self.source == "hybrid":
                return Cell.make(
                    self.dataset,
                    self.arch,
                    "hybrid",
                    self.seed,
                    variants=keep,
                    Q=self.Q,
                    L=self.L,
                    T=self.T,
                    tgim=self.tgim,
                )
            return Cell.make(
                self.dataset,
                self.arch,
                "direct",
                self.seed,
                variants=keep,
                neuron=self.neuron,
                L=self.L,
                T=self.T,
                tgim=self.tgim,
            )
        return None

    @property
    def parent_mode(self) -> str | None:
        parent = self.parent()
        return parent.mode if parent else None

    def with_seed(self, seed: int) -> Cell:
        return replace(self, seed=int(seed))
