"""Names shared by the tables, figures and the report: method labels, and the paper's names for our
datasets, architectures and methods (how a row of ``paper-claims.csv`` finds its cell)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

import pandas as pd

from lmht.experiment.variants import VARIANTS

__all__ = [
    "METHOD_LABELS",
    "NOT_IMPLEMENTED",
    "NOT_RUN",
    "PAPER_METHODS",
    "S1_ARCHS",
    "STAND_INS",
    "arch_family_depth",
    "cell_label",
    "method_label",
    "paper_archs",
    "paper_datasets",
    "variant_label",
]

NOT_RUN = "not run"
NOT_IMPLEMENTED = "baseline method of the paper's comparison table, not implemented here"

#: Paper datasets our suite has no copy of, and the dataset that stands in for them (with the reason).
STAND_INS = {
    "ImageNet-subset": (
        "imagenet200",
        "the paper's ImageNet subset is unspecified; compared on ImageNet-200",
    ),
    "unstated": ("imagenet200", "the paper does not name the dataset; compared on ImageNet-200"),
}
#: Architectures of the paper's appendix Table S1.
S1_ARCHS = ("lmht_ms_resnet18", "lmht_ms_resnet34", "lmht_spikformer_4_384")


@functools.cache
def paper_datasets() -> dict[str, tuple[str, str]]:
    """Paper dataset name -> (our dataset, note): from the registry's ``paper_name``, plus stand-ins."""
    from lmht.data import dataset_info, list_datasets

    names = {dataset_info(d).paper_name: (d, "") for d in list_datasets() if dataset_info(d).needs_files}
    return {**names, **STAND_INS}


@functools.cache
def paper_archs() -> dict[str, str]:
    """Paper architecture name -> our model (the registry's ``paper_name``; first registered wins)."""
    from lmht.models import list_models, model_info

    out: dict[str, str] = {}
    for name in list_models():
        out.setdefault(model_info(name).paper_name, name)
    return out


@functools.cache
def arch_family_depth(arch: str) -> tuple[str, int | None]:
    """(family, depth) of an architecture from the model registry (depth: weight layers on the main path)."""
    from lmht.models import model_info

    try:
        info = model_info(arch)
    except ValueError:
        return "other", None
    return info.family, info.depth


#: How a paper method (regex on paper-claims.csv's ``method``) finds our cell: the cell's fields and
#: the metric. ``{L}``/``{T}``/``{Q}`` come from the claim row (Q from the regex); at L = 1 an M-HT row is
#: the IF neuron (the authors' code builds IF for L = 1). Metrics: a runs column, or ``curve`` (the
#: conversion curve at step T).
PAPER_METHODS = [
    (r"LM-HT direct|LM-HT", dict(mode="direct", neuron="lmht", tgim="uniform"), "top1"),
    (r"M-HT no T-GIM", dict(mode="direct", neuron="mht"), "top1"),
    (r"LM-HT before reparam", dict(mode="reparam", source="direct-lmht", tgim="uniform"), "before_top1"),
    # Table 2 pairs each L = 2 model with its single-threshold version over T·L steps (listed as L=1, T=4)
    (
        r"single-threshold after reparam",
        dict(mode="reparam", source="direct-lmht", tgim="uniform", L=2),
        "after_top1",
    ),
    (r"QCFS Tq=(?P<Q>\d+) ANN", dict(mode="ann"), "top1"),
    (r"QCFS Tq=(?P<Q>\d+) converted", dict(mode="convert"), "curve"),
    (r"LM-HT hybrid from Tq=(?P<Q>\d+)", dict(mode="hybrid", tgim="uniform"), "top1"),
]

METHOD_LABELS = {
    "ann": "QCFS ANN",
    "convert": "QCFS→IF conversion",
    "hybrid": "LM-HT hybrid",
    "direct-lmht": "LM-HT direct",
    "direct-mht": "M-HT (no T-GIM)",
    "direct-if": "IF direct",
    "direct-lif": "LIF direct",
    "reparam-direct-lmht": "reparam. LM-HT direct",
    "reparam-direct-mht": "reparam. M-HT direct",
    "reparam-hybrid": "reparam. LM-HT hybrid",
}
#: Short words for non-default variant values in labels.
_VARIANT_WORDS = {
    ("tgim_param", "direct"): "direct T-GIM",
    ("hybrid_init", "exact"): "exact init",
    ("if_gradient", "detached"): "detached IF",
    ("frame_input", "bins"): "frame bins",
}


def method_label(method: str, Q=None) -> str:
    """Readable method name (``hybrid``, Q=4 -> ``LM-HT hybrid (Q=4)``)."""
    label = METHOD_LABELS.get(method, method)
    if Q is not None and not pd.isna(Q) and method in ("ann", "convert", "hybrid", "reparam-hybrid"):
        label += f" (Q={int(Q)})"
    return label


def variant_label(row: Mapping) -> str:
    """``"exact init, direct T-GIM"`` for a cell with those variants; ``""`` for the paper's method."""
    words = [
        _VARIANT_WORDS.get((k, row.get(k)), f"{k}={row.get(k)}")
        for k in VARIANTS
        if row.get(k) not in (None, "", VARIANTS[k].default) and not pd.isna(row.get(k))
    ]
    return ", ".join(words)


def cell_label(row: Mapping, with_lt: bool = True) -> str:
    """A cell's label in tables and legends: method (Q), L/T, non-uniform T-GIM init, variants."""
    label = method_label(row["method"], row.get("Q"))
    if with_lt and row.get("mode") not in ("ann", "convert"):
        label += f" L={int(row['L'])} T={int(row['T'])}"
    if row.get("tgim") not in (None, "none", "uniform") and not pd.isna(row.get("tgim")):
        label += f", {row['tgim']} T-GIM"
    extra = variant_label(row)
    return f"{label} [{extra}]" if extra else label


def paper_rule(method: str):
    """The PAPER_METHODS rule matching a paper method name: (fields, metric, regex groups), or None."""
    for pattern, fields, metric in PAPER_METHODS:
        m = re.fullmatch(pattern, str(method))
        if m:
            return dict(fields), metric, m.groupdict()
    return None
