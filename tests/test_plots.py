"""The figures of a suite (lmht.experiment.results.plots and figstyle): every catalog figure from the
fixture suite, from an empty suite and from a depth series; one colour per method across figures; integer
ticks on integer axes; n (seeds) in the titles; CIs that come from the statistics module."""

from __future__ import annotations

import colorsys
import re

import matplotlib
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from workflow_utils import fixture_suite, write_metrics

from lmht.experiment.catalog import FIGURES, builder
from lmht.experiment.grid import suite_cells
from lmht.experiment.results import figstyle as F
from lmht.experiment.results import plots as P
from lmht.experiment.results import stats as S
from lmht.experiment.results.load import Suite, load_runs, summarize

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def make_suite(config: dict, name: str) -> Suite:
    cells = suite_cells(config, name)
    runs = load_runs(cells, config["results"], name)
    return Suite(runs, summarize(runs), pd.DataFrame(), cells, config["results"], name, 1.0)


@pytest.fixture(scope="module")
def fixture(tmp_path_factory) -> Suite:
    return make_suite(fixture_suite(tmp_path_factory.mktemp("fixture") / "results"), "fixture")


@pytest.fixture(scope="module")
def figures(fixture):
    """Every catalog figure of the fixture suite, built once."""
    out = {name: builder(entry)(fixture) for name, entry in FIGURES.items()}
    yield out
    for fig in out.values():
        plt.close(fig)


def texts(fig) -> str:
    """All the words of a figure: titles, labels, legends, annotations."""
    parts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    return "\n".join(p for p in parts if p)


def lines_by_gid(fig) -> dict[str, list]:
    out: dict[str, list] = {}
    for line in fig.findobj(matplotlib.lines.Line2D):
        if line.get_gid():
            out.setdefault(line.get_gid(), []).append(line)
    return out


# --------------------------------------------------------------------------------------------------
def test_every_catalog_figure_from_the_fixture_suite(fixture, tmp_path):
    paths = P.plots(fixture, tmp_path)
    assert set(paths) == set(FIGURES)
    for name, path in paths.items():
        assert path == tmp_path / f"{name}.png"
        assert 10_000 < path.stat().st_size < 2_000_000, name


@pytest.mark.parametrize("how", ["no metrics", "no cells"])
def test_every_catalog_figure_from_an_empty_suite(tmp_path, how):
    config = fixture_suite(tmp_path / "results")
    if how == "no metrics":
        for path in (tmp_path / "results").rglob("metrics.json"):
            path.unlink()
        suite = make_suite(config, "fixture")
    else:
        runs = load_runs({}, config["results"], "fixture")
        suite = Suite(runs, summarize(runs), pd.DataFrame(), {}, config["results"], "fixture", 1.0)
    for name, entry in FIGURES.items():
        fig = builder(entry)(suite)
        words = texts(fig)
        assert re.search(r"\bno\b|needs", words, re.IGNORECASE), (name, words)
        assert not fig.axes or all(not ax.has_data() for ax in fig.axes), name
        plt.close(fig)
    paths = P.plots(suite, tmp_path / "figures")
    assert all(p.stat().st_size > 1000 for p in paths.values())


def test_a_method_keeps_its_colour_and_marker_across_figures(figures, fixture):
    styles = F.cell_styles(fixture.runs)
    headline = "direct-lmht_L2_T2_uniform"
    seen = {}
    for name in ("accuracy_vs_steps", "training_curves", "firing_rate"):
        by_gid = lines_by_gid(figures[name])
        # the same cell in two datasets/architectures, and in three figures: one colour, one marker
        lines = by_gid[f"cifar100/lmht_resnet19/{headline}"] + by_gid[f"cifar10/lmht_resnet18/{headline}"]
        seen[name] = {(to_rgb(line.get_color()), line.get_marker()) for line in lines}
    assert len(set().union(*seen.values())) == 1, seen
    colour, marker = next(iter(seen["accuracy_vs_steps"]))
    key = ("cifar100", "lmht_resnet19", headline)
    assert colour == to_rgb(styles[key]["color"]) and marker == F.PALETTE["direct-lmht"].marker
    # every cell of a family is drawn in the family's hue with the family's marker, in every figure
    methods = dict(zip(fixture.runs["cell"], fixture.runs["method"], strict=False))
    for fig in figures.values():
        for gid, lines in lines_by_gid(fig).items():
            method = methods.get(gid.split(":")[0].split("/")[-1])
            if method is None:
                continue
            style = F.PALETTE[F.family(method)]
            for line in lines:
                reference = F.family(method) == "ann" and line.get_marker() == "None"  # a horizontal ANN line
                assert reference or line.get_marker() == style.marker, (gid, line.get_marker())
                if style.color != "#000000":
                    hue = colorsys.rgb_to_hls(*to_rgb(line.get_color()))[0]
                    assert abs(hue - colorsys.rgb_to_hls(*to_rgb(style.color))[0]) < 0.02, gid


def test_palette_is_colour_blind_safe_and_distinct():
    colours = [s.color for s in F.PALETTE.values()]
    markers = [s.marker for s in F.PALETTE.values()]
    assert len(set(colours)) == len(colours) and len(set(markers)) == len(markers)
    okabe_ito = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
    assert set(colours) - okabe_ito == {F.PALETTE["reparam"].color}  # grey is the one addition


def _integer_ticks(axis) -> None:
    lo, hi = sorted(axis.get_view_interval())
    ticks = [t for t in axis.get_majorticklocs() if lo - 1e-9 <= t <= hi + 1e-9]
    assert ticks, axis.get_label().get_text()
    assert all(abs(t - round(t)) < 1e-9 for t in ticks), ticks
    labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\d+", lab) for lab in labels), labels


def test_integer_axes_have_integer_ticks(figures, tmp_path):
    integer_x = re.compile(r"steps|epoch|depth|time steps T")
    checked = 0
    for name, fig in figures.items():
        fig.savefig(tmp_path / f"{name}.png")  # ticks are final once drawn
        for ax in fig.axes:
            if ax.has_data() and integer_x.search(ax.get_xlabel()):
                _integer_ticks(ax.xaxis)
                checked += 1
            if ax.get_ylabel() == "threshold levels L":
                _integer_ticks(ax.yaxis)
    assert checked >= 5


def test_titles_state_dataset_arch_and_n(figures):
    for name in ("accuracy_vs_steps", "ann_gap", "lt_heatmap", "firing_rate", "training_curves"):
        titles = [
            ax.get_title() for ax in figures[name].axes if ax.has_data() and ax.get_label() != "<colorbar>"
        ]
        assert titles and all(re.search(r"n = \d+ seeds?", t) for t in titles), (name, titles)
        assert any("cifar100 / lmht_" in t for t in titles), titles
    heat = figures["lt_heatmap"]
    assert "n = 2 seeds" in heat.axes[0].get_title()


def test_left_out_runs_are_named(figures):
    # the fixture has one failed cell and one missing cell, 2 seeds each
    assert (
        "4 of 26 runs (2 cells) left out: 2 failed, 2 not run" in figures["accuracy_vs_steps"].get_suptitle()
    )


def test_ann_lines_per_q_and_gap_against_theorem(figures, fixture):
    words = texts(figures["accuracy_vs_steps"])
    assert "QCFS ANN Q=8: 77.05 %" in words
    gap = figures["ann_gap"]
    words = texts(gap)
    assert "Theorem 4.4's limit: gap 0 at init, T·L = Q = 8" in words
    lines = lines_by_gid(gap)
    # hybrid at init: 70.0 (both seeds) vs the ANN 77.0 + 0.1·seed, paired by seed: −7.05
    init = lines["cifar100/lmht_vgg16/hybrid-Q8_L2_T2_uniform:at init"][0]
    assert init.get_ydata()[0] == pytest.approx(S.compare({0: 70.0, 1: 70.0}, {0: 77.0, 1: 77.1}).delta)
    assert init.get_ydata()[0] == pytest.approx(-7.05)
    assert init.get_markerfacecolor() == "white"


def test_heatmap_is_shared_scale_with_ci_annotations(figures, fixture):
    fig = figures["lt_heatmap"]
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len({(im.norm.vmin, im.norm.vmax) for im in images}) == 1
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    cells = fixture.cells
    row = cells[(cells["arch"] == "lmht_resnet19") & (cells["cell"] == "direct-lmht_L2_T2_uniform")].iloc[0]
    e = S.estimate([81.6, 81.7])
    assert (row["top1_hi"] - row["top1_lo"]) / 2 == pytest.approx((e.hi - e.lo) / 2)
    assert f"81.65\n±{(e.hi - e.lo) / 2:.2f}" in texts(fig)
    vmin = images[0].norm.vmin
    assert vmin <= -(81.65 - 78.05) + 1e-9 and images[0].norm.vmax == 0.0  # Δ to the best cell, best on top


def test_tgim_matrices_share_one_scale_centred_on_uniform(figures):
    fig = figures["tgim_matrices"]
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 4  # 2 initializations × 2 layers
    norms = {(im.norm.vmin, im.norm.vmax) for im in images}
    assert len(norms) == 1
    vmin, vmax = norms.pop()
    assert (vmin + vmax) / 2 == pytest.approx(1 / 2)  # T = 2: uniform Ω = 1/T
    assert "1/T = 0.50 (uniform)" in texts(fig)


def test_depth_says_when_there_is_no_series(figures):
    words = texts(figures["depth"])
    assert "needs a depth series" in words and "lmht_resnet19 (ResNet, depth 19)" in words


def test_depth_series_with_error_bars_and_gain(tmp_path):
    """Three ResNet depths: top-1 against depth per method and the LM-HT − IF gain, paired by seed."""
    config = {
        "results": str(tmp_path / "results"),
        "seeds": None,
        "suites": {
            "depth": {
                "seeds": [0, 1, 2],
                "convert_steps": 4,
                "grids": [
                    {
                        "name": "depth",
                        "datasets": ["cifar10"],
                        "archs": ["lmht_resnet20", "lmht_resnet18", "lmht_resnet34"],
                        "methods": ["direct-lmht", "direct-if", "hybrid"],
                        "LT": [[2, 2]],
                    },
                    {  # IF at the same T: the L = 1 cells of an LM-HT grid
                        "name": "same_T",
                        "datasets": ["cifar10"],
                        "archs": ["lmht_resnet20", "lmht_resnet18", "lmht_resnet34"],
                        "methods": ["direct-lmht"],
                        "LT": [[1, 2]],
                    },
                ],
            }
        },
    }
    top1 = {"direct-lmht": 90.0, "direct-if": 88.0, "hybrid": 89.0, "ann": 91.0}
    depth = {"lmht_resnet20": 20, "lmht_resnet18": 18, "lmht_resnet34": 34}
    noise = {0: 0.0, 1: 0.3, 2: -0.2}
    for cell in suite_cells(config, "depth"):
        value = top1[cell.method] + depth[cell.arch] / 100 + noise[cell.seed]
        if cell.method == "direct-lmht":
            value += 0.1 * cell.seed  # the gain over IF varies by seed: a real CI
        if cell.method == "direct-if" and cell.T == 2:
            value -= 1.0  # IF at T = 2 is 1 point below IF at T = 4
        write_metrics(cell, config["results"], "depth", value)
    suite = make_suite(config, "depth")
    fig = P.depth(suite)
    lines = lines_by_gid(fig)
    lmht = lines["direct-lmht:2:2"][0]
    assert [round(x) for x in lmht.get_xdata()] == [18, 20, 34]  # drawn side by side, within a layer
    assert lmht.get_ydata()[0] == pytest.approx(90.18 + (0.3 - 0.2) / 3 + 0.1)
    gain = lines["gain:2:2:4"][0]  # against IF at the same L·T
    c = S.compare({0: 0.0, 1: 0.1, 2: 0.2}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert gain.get_ydata()[0] == pytest.approx(2.0 + c.delta)
    same_T = lines["gain:2:2:2"][0]  # against IF at the same T, dashed
    assert same_T.get_ydata()[0] == pytest.approx(3.0 + c.delta) and same_T.get_linestyle() == "--"
    assert {"QCFS ANN Q=4", "IF direct T=4", "IF direct T=2", "LM-HT hybrid Q=4 L=2 T=2"} <= set(
        texts(fig).split("\n")
    )
    from lmht.experiment.results.questions import depth_table

    table = depth_table(suite.runs, suite.cells)
    assert sorted(table["baseline"].unique()) == ["same L·T", "same T"] and len(table) == 6
    by = table.set_index(["baseline", "depth"])
    assert by.loc[("same T", 18), "if_T"] == 2 and by.loc[("same L·T", 18), "if_T"] == 4
    assert by.loc[("same T", 18), "gain"] == pytest.approx(3.0 + c.delta)
    bars = [c for ax in fig.axes for c in ax.containers]
    assert bars and all(c.has_yerr for c in bars)
    assert "n = 3 seeds" in fig.axes[0].get_title()
    for ax in fig.axes:
        if ax.has_data():
            fig.canvas.draw()
            _integer_ticks(ax.xaxis)
    plt.close(fig)


def test_more_cells_than_a_panel_holds_are_split(tmp_path):
    """A dataset/arch with more direct LM-HT cells than MAX_LINES: several panels, none over MAX_LINES."""
    pairs = [[L, T] for L in (1, 2, 4) for T in (1, 2, 4, 8)]
    config = {
        "results": str(tmp_path / "results"),
        "seeds": None,
        "suites": {
            "big": {
                "seeds": [0],
                "convert_steps": 4,
                "grids": [
                    {
                        "name": "lt",
                        "datasets": ["cifar10"],
                        "archs": ["lmht_resnet18"],
                        "methods": ["direct-lmht"],
                        "LT": pairs,
                        "single_level": "lmht",
                        "tgim_init": ["uniform", "random"],
                    }
                ],
            }
        },
    }
    for i, cell in enumerate(suite_cells(config, "big")):
        write_metrics(cell, config["results"], "big", 80.0 + 0.1 * i)
    fig = P.accuracy_vs_steps(make_suite(config, "big"))
    panels = [ax for ax in fig.axes if ax.has_data()]
    assert len(panels) >= 3
    for ax in panels:
        assert len({line.get_gid() for line in ax.get_lines() if line.get_gid()}) <= F.MAX_LINES
    assert any("paper's method" in ax.get_title() for ax in panels)
    assert "n = 1 seed" in panels[0].get_title()
    plt.close(fig)


def test_zoomed_accuracy_axis_names_what_is_cut(figures):
    # the fixture's conversion curve starts at 10 %: below the zoom window, and said so in the legend
    words = texts(figures["accuracy_vs_steps"])
    assert re.search(r"points below \d+ cut off; lowest 10\.0", words)


def test_arch_info_is_the_one_lookup():
    assert F.arch_info("lmht_resnet34") == ("ResNet", 34)
    assert F.arch_info("no_such_arch") == ("other", None)
    assert F.arch_info("lmht_vgg16") == ("VGG", 16)
