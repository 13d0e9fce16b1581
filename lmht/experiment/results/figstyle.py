"""The style every figure of a suite shares (:mod:`lmht.experiment.results.plots` draws the figures).

* **One colour and marker per method family** (:data:`PALETTE`: Okabe & Ito's colours, safe for the common
  colour-vision deficiencies), the same object in every figure. The cells of one family are shades of its
  colour, fixed per cell name over the whole suite (:func:`cell_styles`), so a cell looks the same in every
  figure and every dataset/arch. Our variants and non-default T-GIM initializations are dashed with hollow
  markers; the paper's method is solid and filled.
* Every mean over seeds carries its **95 % t-interval** from :mod:`lmht.experiment.results.stats`
  (:func:`mean_line`: a band on long curves, error bars drawn side by side on short ones).
* Legends below the axes, never over the data (:func:`legend_below`, :func:`place_legends`); integer
  ticks on integer axes (:func:`integer_ticks`); titles with dataset / arch / n (seeds) (:func:`n_text`);
  at most :data:`MAX_LINES` lines per panel (:func:`facets`); accuracy axes zoomed to :data:`ZOOM` points
  with what falls below named (:func:`zoom`).
* A figure without data is a text figure that says what is missing (:func:`message_figure`).

Over 400 lines because it is the one place of this style: palette, per-cell styles, the panel grouping and
the drawing helpers that enforce the conventions above (splitting them would scatter one fact).
"""

from __future__ import annotations

import colorsys
import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator
from matplotlib.transforms import offset_copy

from . import stats as S
from .load import Suite
from .names import arch_family_depth, method_label

__all__ = [
    "FACETS",
    "MAX_LINES",
    "PALETTE",
    "ZOOM",
    "MethodStyle",
    "arch_info",
    "cell_label",
    "cell_styles",
    "clamp_percent",
    "family",
    "message_figure",
    "save",
    "styled",
]


# --------------------------------------------------------------------------------------------------
# Style shared by every figure
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MethodStyle:
    """How a method family is drawn in every figure: legend name, colour (hex) and marker."""

    label: str
    color: str
    marker: str


#: Method family -> style (Okabe & Ito's colour-blind-safe palette; grey for the reparameterized cells).
#: Families are the ``method`` column of the per-run table, with every ``reparam-*`` in ``reparam``.
#: To add a method: one entry here (a free Okabe–Ito colour or grey shade, an unused marker).
PALETTE: dict[str, MethodStyle] = {
    "ann": MethodStyle("QCFS ANN", "#000000", "*"),
    "convert": MethodStyle("QCFS→IF conversion", "#E69F00", "v"),
    "hybrid": MethodStyle("LM-HT hybrid", "#D55E00", "s"),
    "direct-lmht": MethodStyle("LM-HT direct", "#0072B2", "o"),
    "direct-mht": MethodStyle("M-HT (no T-GIM)", "#56B4E9", "D"),
    "direct-if": MethodStyle("IF direct", "#009E73", "^"),
    "direct-lif": MethodStyle("LIF direct", "#CC79A7", "P"),
    "reparam": MethodStyle("reparameterized (single threshold)", "#6E6E6E", "X"),
}
OTHER = MethodStyle("other", "#999999", "h")
#: Panels group these methods (the figures of one line per cell); a group with more than MAX_LINES cells
#: in a dataset/arch is split over several panels.
FACETS: dict[str, tuple[str, ...]] = {
    "ANN → SNN: conversion, hybrid": ("ann", "convert", "hybrid", "reparam-hybrid"),
    "direct LM-HT": ("direct-lmht",),
    "direct baselines, reparameterized": (
        "direct-mht",
        "direct-if",
        "direct-lif",
        "reparam-direct-lmht",
        "reparam-direct-mht",
    ),
}
MAX_LINES = 8
#: Accuracy axes show at most this many points below their top value; lower points are named in the legend.
ZOOM = 20.0
#: Lightness offsets of the k-th cell name of a family in the suite (k = 0: the family colour itself).
SHADES = (0.0, 0.2, -0.15, 0.35, -0.25, 0.1, 0.45, -0.07)
DARK_SHADES = (0.0, 0.3, 0.5, 0.15, 0.4, 0.6, 0.22, 0.68)  # for black and near-black family colours
#: Dash patterns of the k-th line of a family drawn dashed (reference lines such as the QCFS ANNs).
DASHES = ("--", "-.", ":", (0, (6, 2, 1, 2, 1, 2)))
#: Curves with at most this many points show their CI as error bars (dodged), longer ones as a band.
BAR_POINTS = 6
#: Longest legend label (characters) that still fits in two legend columns under a panel.
LEGEND_CHARS = 32
DPI = 110
MAX_PIXELS = 14e6
RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def styled(fn: Callable[[Suite], Figure]) -> Callable[[Suite], Figure]:
    """Draw a figure under the suite's matplotlib style (fonts, grid), wherever it is called from."""

    @functools.wraps(fn)
    def wrapper(suite: Suite) -> Figure:
        with plt.rc_context(RC):
            fig = fn(suite)
            place_legends(fig)
            return fig

    return wrapper


def arch_info(arch: str) -> tuple[str, int | None]:
    """(family, depth) of an architecture: the one place the figures learn it (the model registry)."""
    return arch_family_depth(arch)


def family(method: str) -> str:
    """The :data:`PALETTE` key of a method (``reparam-hybrid`` -> ``reparam``)."""
    return "reparam" if str(method).startswith("reparam-") else str(method)


def plain(value):
    """A plain Python value: None for NaN/NA, int for integral numbers."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.integer | np.floating):
        value = value.item()
    return int(value) if isinstance(value, float) and value.is_integer() else value


def is_paper_method(row) -> bool:
    """The paper's method: no variant tag and the paper's T-GIM initialization (or none)."""
    return not row["variant_tags"] and row["tgim"] in ("uniform", "none")


def cell_label(row) -> str:
    """A cell in words: 'LM-HT direct L=2 T=2', 'LM-HT hybrid Q=8 L=2 T=2', 'IF direct T=4',
    'LM-HT direct L=2 T=2, T-GIM identity +direct-tgim'."""
    method, L, T, Q = row["method"], plain(row["L"]), plain(row["T"]), plain(row["Q"])
    parts = [method_label(method)]
    if Q is not None:
        parts.append(f"Q={Q}")
    if method in ("direct-if", "direct-lif", "convert"):
        parts.append(f"T={T}" if method != "convert" else f"up to T={T}")
    elif L is not None:
        parts.append(f"L={L} T={T}")
    text = " ".join(parts)
    if row["tgim"] not in ("uniform", "none"):
        text += f", T-GIM {row['tgim']}"
    return text + (f" {row['variant_tags']}" if row["variant_tags"] else "")


def shade(color: str, k: int) -> str:
    """The k-th shade of a colour (k = 0: the colour itself): same hue, lightness moved by SHADES[k]."""
    h, lightness, s = colorsys.rgb_to_hls(*to_rgb(color))
    shades = DARK_SHADES if lightness < 0.2 else SHADES
    return to_hex(colorsys.hls_to_rgb(h, min(0.82, max(0.1, lightness + shades[k % len(shades)])), s))


def cell_order(row) -> tuple:
    """Sort key of the cells of a family: the paper's method first, then by Q, L·T, L, T-GIM, variants."""
    return (
        not is_paper_method(row),
        plain(row["Q"]) or 0,
        plain(row["steps"]) or 0,
        plain(row["L"]) or 0,
        str(row["tgim"]),
        str(row["variant_tags"]),
    )


def cell_styles(runs: pd.DataFrame) -> dict[tuple[str, str, str], dict]:
    """``(dataset, arch, cell) -> Line2D keyword arguments`` (color, marker, linestyle, marker fill, label).

    The k-th cell name of a family in the suite (the paper's method first, then by Q, L·T, L) gets the k-th
    shade of the family's colour: a cell looks the same in every figure and every dataset/arch.
    """
    out: dict[tuple[str, str, str], dict] = {}
    if runs.empty:
        return out
    names = runs.drop_duplicates("cell")
    index = {}
    for _, g in names.groupby(names["method"].map(family), sort=False):
        for k, row in enumerate(sorted((r for _, r in g.iterrows()), key=cell_order)):
            index[row["cell"]] = k
    for _, row in runs.drop_duplicates(["dataset", "arch", "cell"]).iterrows():
        fam, k, default = family(row["method"]), index[row["cell"]], is_paper_method(row)
        style = PALETTE.get(fam, OTHER)
        color = shade(style.color, k)
        out[(row["dataset"], row["arch"], row["cell"])] = dict(
            color=color,
            marker=style.marker,
            linestyle=DASHES[k % len(DASHES)] if fam == "ann" else ("-" if default else "--"),
            markerfacecolor=color if default else "white",
            markeredgecolor=color,
            label=cell_label(row),
        )
    return out


# --------------------------------------------------------------------------------------------------
# Helpers: data
# --------------------------------------------------------------------------------------------------
def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that finished (status ok)."""
    return runs[runs["status"] == "ok"] if not runs.empty else runs


def seed_values(g: pd.DataFrame, column: str) -> dict[int, float]:
    """seed -> value of the runs of ``g`` where ``column`` is a finite number."""
    out = {}
    for seed, value in zip(g["seed"], g[column], strict=True):
        value = plain(value)
        if isinstance(value, int | float) and math.isfinite(value):
            out[int(seed)] = float(value)
    return out


def curve_estimates(g: pd.DataFrame, column: str = "top1_per_step") -> list[S.Estimate]:
    """Per-position estimate (mean and 95 % t-interval over seeds) of a list column of a cell's runs."""
    lists = [c for c in g[column] if isinstance(c, list | tuple) and c]
    if not lists:
        return []
    return [S.estimate([c[i] for c in lists if len(c) > i]) for i in range(max(map(len, lists)))]


def n_text(ns: Iterable[int]) -> str:
    """'n = 3 seeds', or 'n = 2–3 seeds' when the cells of a panel ran different numbers of seeds."""
    ns = sorted({int(n) for n in ns if n})
    if not ns:
        return "n = 0"
    return f"n = {ns[0]} seed{'s' if ns[0] > 1 else ''}" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]} seeds"


def cells_of(runs: pd.DataFrame) -> list[tuple[tuple[str, str, str], pd.DataFrame]]:
    """The ok runs grouped by (dataset, arch, cell), in the suite's order."""
    ok = ok_runs(runs)
    return [(k, g) for k, g in ok.groupby(["dataset", "arch", "cell"], sort=False)] if not ok.empty else []


def facets(
    keys: list[tuple[str, str, str]],
    methods: dict,
    order: dict,
    groups: dict[str, tuple[str, ...]],
    reserve: Callable[[tuple[str, str]], int] = lambda da: 0,
) -> dict[tuple[str, str], list[tuple]]:
    """Panels of a one-line-per-cell figure: ``{(dataset, arch): [(group title, [cell keys]), ...]}``, one
    panel per method group that has cells, cells sorted by ``order[key]`` (:func:`cell_order`: the paper's
    method first). A group with more than MAX_LINES − reserve(row) cells (reserve: reference lines drawn in
    every panel of the row) is split into the paper's method and the rest, then into consecutive chunks
    (consecutive cells have distinct shades)."""
    rows: dict[tuple[str, str], list[tuple]] = {}
    for da in dict.fromkeys(k[:2] for k in keys):
        rows[da] = []
        size = max(1, MAX_LINES - reserve(da))
        for title, members in [*groups.items(), ("other methods", None)]:
            cells = sorted(
                (
                    k
                    for k in keys
                    if k[:2] == da
                    and (
                        methods[k] in members
                        if members is not None
                        else not any(methods[k] in m for m in groups.values())
                    )
                ),
                key=lambda k: (methods[k], order[k]),
            )
            parts = [(title, cells)]
            paper = [k for k in cells if not order[k][0]]
            if len(cells) > size and 0 < len(paper) < len(cells):
                others = [k for k in cells if order[k][0]]
                parts = [(f"{title}: paper's method", paper), (f"{title}: T-GIM inits, variants", others)]
            for name, part in parts:
                n = math.ceil(len(part) / size)
                chunks = [part[i * len(part) // n : (i + 1) * len(part) // n] for i in range(n)]
                rows[da] += [
                    (name + (f" ({i + 1}/{n})" if n > 1 else ""), chunk) for i, chunk in enumerate(chunks)
                ]
    return rows


def left_out(suite: Suite) -> str:
    """What the figures leave out: runs that failed or did not run."""
    runs = suite.runs
    bad = runs[runs["status"] != "ok"] if not runs.empty else runs
    if bad.empty:
        return ""
    cells = bad.groupby(["dataset", "arch", "cell"]).ngroups
    failed = int((bad["status"] == "failed").sum())
    return (
        f"\n{len(bad)} of {len(runs)} runs ({cells} cells) left out: {failed} failed, "
        f"{len(bad) - failed} not run (the cells table names them)"
    )


# --------------------------------------------------------------------------------------------------
# Helpers: drawing
# --------------------------------------------------------------------------------------------------
def message_figure(suite: Suite, title: str, lines: Iterable[str]) -> Figure:
    """A figure that says, in words, why the figure ``title`` has nothing to show in ``suite``."""
    runs = suite.runs
    done = int((runs["status"] == "ok").sum()) if not runs.empty else 0
    lines = [*lines, f"(suite {suite.name!r}: {len(runs)} runs, {done} finished)"]
    height = 0.75 + 0.19 * len(lines)
    fig = plt.figure(figsize=(7.5, height))
    fig.text(0.02, 1 - 0.2 / height, title, fontsize=10, weight="bold", va="top")
    fig.text(0.02, 1 - 0.5 / height, "\n".join(lines), fontsize=8.5, va="top", linespacing=1.4)
    return fig


def panel_grid(n_rows: int, n_cols: int, legend_lines: int = 0, w: float = 4.3, h: float = 2.8):
    """A constrained-layout grid with room for a legend of ``legend_lines`` lines below each axes."""
    height = n_rows * (h + 0.55 + 0.16 * legend_lines) + 0.45
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(w * n_cols, height), squeeze=False, layout="constrained"
    )
    return fig, axes


def legend_below(ax, handles=None, ncol: int | None = None) -> None:
    """The legend below the axes, under the tick labels and the x label, never over the data; two columns
    when the labels are short enough to fit under the axes."""
    handles = handles if handles is not None else ax.get_legend_handles_labels()[0]
    if not handles:
        return
    ncol = ncol or legend_columns(h.get_label() for h in handles)
    below = offset_copy(ax.transAxes, fig=ax.figure, y=-34 if ax.get_xlabel() else -20, units="points")
    legend = ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=below,
        ncol=ncol,
        frameon=False,
        handlelength=2.4,
        columnspacing=1.0,
        borderaxespad=0.0,
    )
    legend.set_gid("below")


def legend_columns(labels: Iterable[str]) -> int:
    """Two legend columns when every label fits in half a panel's width, else one."""
    return 2 if max((len(str(lab)) for lab in labels), default=0) <= LEGEND_CHARS else 1


def place_legends(fig: Figure) -> None:
    """Move each legend drawn by :func:`legend_below` just under its axes' tick labels and x label,
    measured on the laid-out figure (tick labels may be rotated or on two lines)."""
    below = [ax for ax in fig.axes if ax.get_legend() is not None and ax.get_legend().get_gid() == "below"]
    if not below:
        return
    fig.draw_without_rendering()
    for ax in below:
        drop = max(0.0, ax.get_window_extent().y0 - ax.xaxis.get_tightbbox().y0) * 72 / fig.dpi + 6
        ax.get_legend().set_bbox_to_anchor(
            (0.5, 0.0), transform=offset_copy(ax.transAxes, fig=fig, y=-drop, units="points")
        )


def integer_ticks(axis, values: Iterable | None = None, log2: bool = False) -> None:
    """Integer ticks: at the given values (when few), else integer positions; log2 axes tick at 2^k."""
    vals = sorted({int(v) for v in (values or []) if v is not None and math.isfinite(v)})
    if log2:
        (axis.axes.set_xscale if axis is axis.axes.xaxis else axis.axes.set_yscale)("log", base=2)
        if len(vals) > 8 or not vals:
            hi = max(vals or [1])
            vals = [2**k for k in range(int(math.log2(hi)) + 1)] + ([hi] if hi & (hi - 1) else [])
        axis.set_minor_locator(NullLocator())
    if vals and (log2 or len(vals) <= 10):
        axis.set_major_locator(FixedLocator(vals))
    else:
        axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))


def gid_of(key: tuple[str, str, str]) -> str:
    """The id of a cell's artists (tests find a cell's lines by it): ``dataset/arch/cell``."""
    return "/".join(key)


def mean_line(
    ax, x, ests: list[S.Estimate], style: dict, gid: str, label: str, dodge: float = 0.0, log2=False
):
    """Mean line with markers and its 95 % t-interval (none where n < 2): a band for long curves, error bars
    for short ones (at most BAR_POINTS points), shifted by ``dodge`` (a fraction of a step; log2 axes: of
    an octave) so that the bars of neighbouring cells do not hide each other."""
    x = np.asarray(x, dtype=float)
    mean = np.array([e.mean for e in ests])
    lo = np.array([e.lo for e in ests])
    hi = np.array([e.hi for e in ests])
    kw = {**style, "label": label}
    if len(x) > BAR_POINTS:
        (line,) = ax.plot(x, mean, markersize=3.5, linewidth=1.4, gid=gid, **kw)
        ax.fill_between(x, lo, hi, color=style["color"], alpha=0.13, linewidth=0)
        return line
    x = x * 2**dodge if log2 else x + dodge
    err = np.vstack([mean - lo, hi - mean])
    bars = ax.errorbar(
        x,
        mean,
        yerr=np.where(np.isfinite(err), err, 0.0),
        markersize=4.5,
        linewidth=1.4,
        capsize=2.5,
        elinewidth=0.9,
        **kw,
    )
    bars[0].set_gid(gid)
    for art in bars[2]:
        art.set_alpha(0.75)
    return bars


def dodges(n: int, width: float = 0.16) -> list[float]:
    """Offsets of n lines drawn side by side, spread over ``width`` around 0."""
    return [0.0] if n < 2 else list(np.linspace(-width / 2, width / 2, n))


def zoom(ax, values: Iterable[float], handles: list, what: str = "points", span: float = ZOOM) -> None:
    """Limit the y range to ``span`` below the top value; name what is cut off in the legend."""
    vals = np.array([v for v in values if v is not None and math.isfinite(v)])
    if vals.size == 0:
        return
    top, low = vals.max(), vals.min()
    if top - low <= span:
        return
    floor = top - span
    ax.set_ylim(floor - 0.02 * span, top + 0.04 * span)
    handles.append(
        Line2D([], [], linestyle="none", label=f"(▼ {what} below {floor:.0f} cut off; lowest {low:.1f})")
    )


def clamp_percent(ax) -> None:
    """Keep an accuracy axis within [0, 100] % (a t-interval of a few wild seeds can reach past both)."""
    lo, hi = ax.get_ylim()
    ax.set_ylim(max(lo, -1.0), min(hi, 101.0))


def label_n(style: dict, n: int, panel_n: int) -> str:
    """A cell's legend label, with its n when it differs from the panel's."""
    return style["label"] + n_suffix(n, panel_n)


def suptitle(fig: Figure, suite: Suite, title: str, note: str) -> None:
    """Figure title: what it shows, the suite, how to read the error marks, and what was left out."""
    fig.suptitle(f"{title} · suite {suite.name}\n{note}{left_out(suite)}", fontsize=9)


def save(fig: Figure, path: Path) -> None:
    """Write a PNG (at most MAX_PIXELS pixels, so that a large suite's figure stays small)."""
    w, h = fig.get_size_inches()
    dpi = min(DPI, math.sqrt(MAX_PIXELS / (w * h)))
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.15)


def error_point(ax, x: float, c: S.Comparison | S.Estimate, style: dict, label: str, gid: str):
    """One point with its 95 % CI as an error bar (none when n < 2)."""
    mean = c.delta if isinstance(c, S.Comparison) else c.mean
    lo, hi = c.lo, c.hi
    err = [[mean - lo], [hi - mean]] if math.isfinite(lo) and math.isfinite(hi) else None
    kw = {k: v for k, v in style.items() if k != "label"}
    container = ax.errorbar([x], [mean], yerr=err, capsize=3, markersize=6, elinewidth=1.0, label=label, **kw)
    container[0].set_gid(gid)
    return container


def as_estimate(c: S.Comparison) -> S.Estimate:
    """A difference drawn like a mean: Δ with its CI."""
    return S.Estimate(c.n, c.delta, c.sd, c.lo, c.hi)


def n_suffix(n: int, panel_n: int) -> str:
    """' (n=2)' when a cell's n differs from the panel's n (stated in the title), else ''."""
    return f" (n={n})" if n != panel_n else ""
