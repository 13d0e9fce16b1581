"""Suites and grids of ``config.yaml`` expanded into cells, and the CLI settings of a cell.

A suite is a list of grids; a grid is the product datasets × archs × methods × (L, T) pairs ×
T-GIM inits × Q × variant values × seeds (``workflow/schemas/config.schema.yaml`` documents each key).
Methods are the grid vocabulary; each expands into the cells it needs:

=================  ==============================================================================
``ann``            the QCFS ANN of each Q (Q = L·T of each pair unless the grid lists ``Q``)
``convert``        that ANN converted to IF, accuracy after each step up to the suite's convert_steps
``hybrid``         the ANN and the hybrid LM-HT cell (uniform T-GIM: Algorithm 1 starts from it)
``reparam-hybrid`` the hybrid cell and its single-threshold reparameterization
``direct-lmht``    direct LM-HT; ``direct-mht`` the same without T-GIM and learnable leak
``reparam-direct`` the direct LM-HT cell and its reparameterization
``direct-if/lif``  the single-threshold baseline at the pair's L·T budget (the paper's fair comparison)
=================  ==============================================================================

A grid's L = 1 cells of ``direct-lmht``/``direct-mht`` are the IF baseline (the authors' code builds IF
with θ = 1 for L = 1, utils.py), unless the grid sets ``single_level: lmht`` (our variant: a one-level
LM-HT neuron with T-GIM). Pure functions of the config dict: the workflow, the aggregation and the
tests call the same ones.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .cell import Cell
from .modes import MODES

__all__ = [
    "as_yaml",
    "cell_preset",
    "cell_settings",
    "check_suite",
    "cli_arguments",
    "expand_grid",
    "grid_pairs",
    "layered",
    "missing_data_roots",
    "suite_cells",
    "suite_datasets",
]

def as_yaml(value: Any) -> Any:
    """A value of ``snakemake --config`` read as YAML: Snakemake passes ``seeds=[0,1]`` as ``['0', '1']``
    and ``prepare_data=false`` as ``'false'``; other strings stay strings."""
    import yaml

    if isinstance(value, list):
        return [as_yaml(v) for v in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if parsed is None or isinstance(parsed, bool | int | float | list) else value
    return value


#: Grid methods (the schema's enum is tested against this).
METHODS = (
    "ann",
    "convert",
    "hybrid",
    "reparam-hybrid",
    "direct-lmht",
    "direct-mht",
    "direct-if",
    "direct-lif",
    "reparam-direct",
)


def grid_pairs(grid: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(L, T) pairs of a grid: explicit ``LT`` pairs, else every split of each ``budget``, else L × T."""
    if grid.get("LT"):
        return [(int(L), int(T)) for L, T in grid["LT"]]
    if grid.get("budget"):
        return [(L, b // L) for b in grid["budget"] for L in range(1, b + 1) if b % L == 0]
    return list(itertools.product(grid.get("L", [2]), grid.get("T", [2])))


def _variant_choices(grid: Mapping[str, Any]) -> list[dict[str, str]]:
    variants = grid.get("variants") or {}
    keys = list(variants)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*variants.values())]


def expand_grid(grid: Mapping[str, Any], seeds, convert_steps: int) -> Iterator[Cell]:
    """Yield the cells of one grid (prerequisite cells included; duplicates possible)."""
    single_level = grid.get("single_level", "if")
    for dataset, arch, method, (L, T), tgim, chosen, seed in itertools.product(
        grid["datasets"],
        grid["archs"],
        grid["methods"],
        grid_pairs(grid),
        grid.get("tgim_init") or ["uniform"],
        _variant_choices(grid),
        seeds,
    ):
        cell = functools.partial(Cell.make, dataset, arch, seed=seed, variants=chosen)

        if method in ("ann", "convert", "hybrid", "reparam-hybrid"):
            for Q in grid.get("Q") or [L * T]:
                yield cell("ann", Q=Q)
                if method == "convert":
                    yield cell("convert", Q=Q, T=convert_steps)
                if method in ("hybrid", "reparam-hybrid"):
                    yield cell("hybrid", Q=Q, L=L, T=T, tgim="uniform")
                if method == "reparam-hybrid":
                    yield cell("reparam", source="hybrid", Q=Q, L=L, T=T, tgim="uniform")
        elif method in ("direct-lmht", "direct-mht") and L == 1 and single_level == "if":
            yield cell("direct", neuron="if", L=1, T=T)
        elif method in ("direct-lmht", "reparam-direct", "direct-mht"):
            neuron = "mht" if method == "direct-mht" else "lmht"
            yield cell("direct", neuron=neuron, L=L, T=T, tgim=tgim)
            if method == "reparam-direct":
                yield cell("reparam", source="direct", neuron=neuron, L=L, T=T, tgim=tgim)
        elif method in ("direct-if", "direct-lif"):
            yield cell("direct", neuron=method.split("-")[1], L=1, T=L * T)
        else:
            raise ValueError(f"grid {grid.get('name')!r}: unknown method {method!r} (one of {METHODS})")


def suite_cells(config: Mapping[str, Any], suite: str) -> dict[Cell, list[str]]:
    """Every cell of a suite of ``config`` (the workflow config) -> the names of the grids asking for it.

    Seeds: ``config["seeds"]`` if set, else the grid's, else the suite's. Insertion-ordered.
    """
    spec = config["suites"][suite]
    cells: dict[Cell, list[str]] = {}
    for grid in spec["grids"]:
        seeds = config.get("seeds") or grid.get("seeds") or spec.get("seeds") or [0]
        for cell in expand_grid(grid, seeds, spec.get("convert_steps", 16)):
            names = cells.setdefault(cell, [])
            if grid["name"] not in names:
                names.append(grid["name"])
    return cells


def suite_datasets(config: Mapping[str, Any], suite: str) -> list[str]:
    return sorted({d for grid in config["suites"][suite]["grids"] for d in grid["datasets"]})


def layered(config: Mapping[str, Any], suite: str, dataset: str, mode: str, section: str) -> dict[str, Any]:
    """``suite.<section>.all < .<mode> < suite.datasets.<dataset>.<section>.all < .<mode>``
    (section: ``settings`` or ``resources``)."""
    spec = config["suites"][suite]
    blocks = [spec.get(section) or {}, ((spec.get("datasets") or {}).get(dataset) or {}).get(section) or {}]
    merged: dict[str, Any] = {}
    for block in blocks:
        merged.update(block.get("all") or {})
        merged.update(block.get(mode) or {})
    return merged


def cell_preset(config: Mapping[str, Any], suite: str, dataset: str) -> str:
    """The packaged preset the cells of ``dataset`` start from (``suites.S.datasets.D.preset``; "" = none)."""
    return ((config["suites"][suite].get("datasets") or {}).get(dataset) or {}).get("preset") or ""


def cell_settings(config: Mapping[str, Any], suite: str, cell: Cell) -> dict[str, Any]:
    """The ``key=value`` settings of the ``lmht`` CLI for ``cell``: the suite's layered settings, then
    everything the cell's name fixes (dataset, arch, seed, L, T, neuron, T-GIM, Q, parent checkpoint,
    variants). Config flows one way: nothing here is read back from a run."""
    s = layered(config, suite, cell.dataset, cell.mode, "settings")
    s.update(dataset=cell.dataset, arch=cell.arch, seed=cell.seed)
    root = (config.get("data_roots") or {}).get(cell.dataset)
    if root:
        s["data_root"] = root
    if cell.mode in ("ann", "convert", "hybrid"):
        s["levels"] = cell.Q
    parent = cell.parent()
    if parent is not None:
        key = MODES[cell.mode].parent_key
        s[key] = os.path.join(str(parent.folder(config["results"], suite)), "checkpoint.pt")
    if cell.mode == "convert":  # the curve runs to T; top1, SOPs and energy are measured at T too
        s.update(convert_steps=cell.T, T=cell.T)
    else:
        if cell.mode != "ann":
            s.update(L=cell.L, T=cell.T)
        if cell.mode == "hybrid":
            s["neuron"] = "lmht"
        if cell.mode == "direct":
            s["neuron"] = cell.neuron
        if cell.tgim != "none":
            s["tgim_init"] = cell.tgim
    s.update(dict(cell.variants))
    return s


def check_suite(config: Mapping[str, Any], suite: str) -> list[str]:
    """Checks the config schema cannot express, for the selected suite. Raises ValueError whose message
    starts with the offending key; returns warnings (settings of datasets no grid uses)."""
    if suite not in config["suites"]:
        raise ValueError(f"'suite': unknown suite {suite!r}; defined suites: {', '.join(config['suites'])}")
    spec = config["suites"][suite]
    names: set[str] = set()
    for i, grid in enumerate(spec["grids"]):
        if grid["name"] in names:
            raise ValueError(
                f"suites.{suite}.grids[{i}].name: grid name {grid['name']!r} is used twice in suite {suite!r}"
            )
        names.add(grid["name"])
    used = set(suite_datasets(config, suite))
    return [
        f"suites.{suite}.datasets.{d} is set but no grid of suite {suite!r} uses dataset {d!r}"
        for d in spec.get("datasets") or {}
        if d not in used
    ]


def cli_arguments(settings: Mapping[str, Any]) -> list[str]:
    """``key=value`` arguments of the ``lmht`` CLI for ``settings`` (values as YAML: booleans and null
    lower case, lists and mappings as JSON)."""

    def value(v: Any) -> str:
        if isinstance(v, bool) or v is None:
            return {True: "true", False: "false", None: "null"}[v]
        return json.dumps(v, separators=(",", ":")) if isinstance(v, list | dict) else str(v)

    return [f"{k}={value(v)}" for k, v in settings.items()]


def missing_data_roots(config: Mapping[str, Any], suite: str, prepared: Iterable[str] = ()) -> list[tuple]:
    """``(dataset, root)`` of the suite's datasets whose configured data root does not exist, except the
    datasets in ``prepared`` (a workflow rule puts those in place)."""
    roots = config.get("data_roots") or {}
    return [(d, roots[d]) for d in suite_datasets(config, suite)
            if roots.get(d) and d not in set(prepared) and not os.path.exists(roots[d])]
