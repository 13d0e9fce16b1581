"""The experiment contract (lmht.experiment): cells, grid expansion, run records, modes, the catalog."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lmht.experiment import FIGURES, MODES, TABLES, VARIANTS, Cell, cell_settings, suite_cells
from lmht.experiment.cell import cell_pattern
from lmht.experiment.grid import check_suite, expand_grid, grid_pairs
from lmht.experiment.record import (
    EvalSummary,
    FailureRecord,
    ReparamResult,
    RunRecord,
    read_record,
    write_record,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
CONFIG.setdefault("seeds", None)

NAMES = [
    ("ann", dict(Q=4), "ann_Q4"),
    ("convert", dict(Q=8, T=16), "convert-Q8_L1_T16_none"),
    ("hybrid", dict(Q=4, L=2, T=2, tgim="uniform"), "hybrid-Q4_L2_T2_uniform"),
    ("direct", dict(neuron="lmht", L=2, T=2, tgim="random"), "direct-lmht_L2_T2_random"),
    ("direct", dict(neuron="mht", L=4, T=1, tgim="uniform"), "direct-mht_L4_T1_none"),
    ("direct", dict(neuron="if", L=1, T=4), "direct-if_L1_T4_none"),
    ("direct", dict(neuron="lif", L=1, T=8), "direct-lif_L1_T8_none"),
    ("reparam", dict(source="direct", L=2, T=2, tgim="uniform"), "reparam-direct-lmht_L2_T2_uniform"),
    ("reparam", dict(source="hybrid", Q=4, L=2, T=2, tgim="uniform"), "reparam-hybrid-Q4_L2_T2_uniform"),
]


@pytest.mark.parametrize(("mode", "fields", "name"), NAMES)
def test_cell_names_round_trip(mode, fields, name):
    cell = Cell.make("cifar100", "lmht_resnet19", mode, seed=3, **fields)
    assert cell.name == name
    assert Cell.parse(name, "cifar100", "lmht_resnet19", 3) == cell
    assert Cell.from_path(cell.path("res", "quick")) == cell
    assert (
        str(cell.path("res", "quick")) == f"res/quick/runs/cifar100/lmht_resnet19/{name}/seed3/metrics.json"
    )
    import re

    assert re.fullmatch(cell_pattern(mode), name)
    others = [m for m in MODES if m != mode]
    assert not any(re.fullmatch(cell_pattern(m), name) for m in others)


def test_variants_are_named_only_where_they_apply_and_differ():
    hybrid = Cell.make(
        "c",
        "a",
        "hybrid",
        Q=4,
        L=2,
        T=2,
        tgim="uniform",
        variants={"hybrid_init": "exact", "if_gradient": "detached", "tgim_param": "sigmoid"},
    )
    assert hybrid.name == "hybrid-Q4_L2_T2_uniform+exact-init"
    assert hybrid.variant("tgim_param") == "sigmoid" and hybrid.variant("if_gradient") == "bptt"
    assert Cell.parse(hybrid.name, "c", "a") == hybrid
    if_cell = Cell.make(
        "c",
        "a",
        "direct",
        neuron="if",
        L=1,
        T=4,
        variants={"if_gradient": "detached", "tgim_param": "direct"},
    )
    assert if_cell.name == "direct-if_L1_T4_none+detached-if"
    # the paper's sigmoid T-GIM cannot be the identity: identity cells select (and name) the direct form
    eye = Cell.make("c", "a", "direct", neuron="lmht", L=2, T=2, tgim="identity")
    assert eye.name == "direct-lmht_L2_T2_identity+direct-tgim"
    # a reparam cell carries its source's variants, and its parent is that source
    rep = Cell.make(
        "c", "a", "reparam", source="hybrid", Q=4, L=2, T=2, tgim="uniform", variants={"hybrid_init": "exact"}
    )
    assert rep.parent() == hybrid.with_seed(0)
    with pytest.raises(ValueError, match="not canonical"):
        Cell.parse("direct-lmht_L2_T2_identity", "c", "a")
    with pytest.raises(ValueError, match="unknown variant tag"):
        Cell.parse("direct-lmht_L2_T2_uniform+fast", "c", "a")
    with pytest.raises(ValueError, match="not one of"):
        Cell.make("c", "a", "hybrid", Q=4, L=2, T=2, tgim="uniform", variants={"hybrid_init": "magic"})
    tags = [tag for v in VARIANTS.values() for tag in v.alternatives.values()]
    assert len(tags) == len(set(tags))


def test_every_variant_default_is_a_config_default_and_its_values_are_choices():
    from lmht.config import SCHEMA, resolve_config

    defaults = resolve_config("direct")
    for key, variant in VARIANTS.items():
        if key not in SCHEMA:
            pytest.skip(f"{key} is not a CLI key yet")
        assert defaults[key] == variant.default, key
        assert set(SCHEMA[key].choices) == set(variant.choices), key


def test_grid_pairs():
    assert grid_pairs({"LT": [[2, 2], [4, 1]]}) == [(2, 2), (4, 1)]
    assert grid_pairs({"budget": [4]}) == [(1, 4), (2, 2), (4, 1)]
    assert grid_pairs({"budget": [4, 6]})[-1] == (6, 1) and len(grid_pairs({"budget": [4, 6]})) == 7
    assert grid_pairs({"L": [1, 2], "T": [2, 4]}) == [(1, 2), (1, 4), (2, 2), (2, 4)]


def grid(**kw):
    return {"name": "g", "datasets": ["cifar100"], "archs": ["lmht_resnet18"], **kw}


def names(cells):
    return sorted({c.name for c in cells})


def test_expansion_rules():
    # hybrid pulls its ANN (Q = L·T by default); convert runs to convert_steps; reparam pulls its source
    cells = list(expand_grid(grid(methods=["convert", "reparam-hybrid"], LT=[[2, 2], [4, 2]]), [0], 32))
    assert names(cells) == [
        "ann_Q4",
        "ann_Q8",
        "convert-Q4_L1_T32_none",
        "convert-Q8_L1_T32_none",
        "hybrid-Q4_L2_T2_uniform",
        "hybrid-Q8_L4_T2_uniform",
        "reparam-hybrid-Q4_L2_T2_uniform",
        "reparam-hybrid-Q8_L4_T2_uniform",
    ]
    # an explicit Q; hybrid cells always start from a uniform T-GIM
    cells = list(expand_grid(grid(methods=["hybrid"], LT=[[2, 2]], Q=[8], tgim_init=["identity"]), [0], 8))
    assert names(cells) == ["ann_Q8", "hybrid-Q8_L2_T2_uniform"]
    # single-threshold baselines run at the L·T budget; L = 1 of LM-HT/M-HT grids is the IF baseline
    cells = list(expand_grid(grid(methods=["direct-if", "direct-lmht", "direct-mht"], budget=[4]), [0], 8))
    assert names(cells) == [
        "direct-if_L1_T4_none",
        "direct-lmht_L2_T2_uniform",
        "direct-lmht_L4_T1_uniform",
        "direct-mht_L2_T2_none",
        "direct-mht_L4_T1_none",
    ]
    cells = list(expand_grid(grid(methods=["direct-lmht"], LT=[[1, 4]], single_level="lmht"), [0], 8))
    assert names(cells) == ["direct-lmht_L1_T4_uniform"]
    # variants multiply the grid where they apply
    cells = list(
        expand_grid(
            grid(
                methods=["hybrid", "direct-if"],
                LT=[[2, 2]],
                variants={"hybrid_init": ["algorithm1", "exact"]},
            ),
            [0, 1],
            8,
        )
    )
    assert names(cells) == [
        "ann_Q4",
        "direct-if_L1_T4_none",
        "hybrid-Q4_L2_T2_uniform",
        "hybrid-Q4_L2_T2_uniform+exact-init",
    ]
    assert {c.seed for c in cells} == {0, 1}


@pytest.mark.parametrize("suite", ["smoke", "quick", "paper"])
def test_every_suite_expands_into_valid_cells(suite):
    assert check_suite(CONFIG, suite) == []
    cells = suite_cells(CONFIG, suite)
    assert cells
    for cell, grids in cells.items():
        assert Cell.parse(cell.name, cell.dataset, cell.arch, cell.seed) == cell
        assert grids and set(grids) <= {g["name"] for g in CONFIG["suites"][suite]["grids"]}
        parent = cell.parent()
        if parent is not None:
            assert parent in cells, f"{cell.name} needs {parent.name}"


def test_cell_settings_fix_what_the_name_says():
    cell = Cell.parse("hybrid-Q4_L2_T2_uniform", "fashion_mnist", "lmht_fmnist_cnn", 1)
    s = cell_settings(CONFIG, "quick", cell)
    assert s["levels"] == 4 and s["L"] == 2 and s["T"] == 2 and s["seed"] == 1 and s["neuron"] == "lmht"
    assert (
        s["ann_checkpoint"] == "results/quick/runs/fashion_mnist/lmht_fmnist_cnn/ann_Q4/seed1/checkpoint.pt"
    )
    assert s["data_root"] == CONFIG["data_roots"]["fashion_mnist"]
    settings = CONFIG["suites"]["quick"]["settings"]
    assert (
        s["epochs"] == settings["hybrid"]["epochs"] and s["train_subset"] == settings["all"]["train_subset"]
    )
    conv = cell_settings(
        CONFIG, "quick", Cell.parse("convert-Q4_L1_T16_none", "fashion_mnist", "lmht_fmnist_cnn")
    )
    assert conv["T"] == conv["convert_steps"] == 16 and "L" not in conv
    rep = cell_settings(
        CONFIG, "quick", Cell.parse("reparam-direct-lmht_L2_T2_uniform", "fashion_mnist", "lmht_fmnist_cnn")
    )
    assert rep["snn_checkpoint"].endswith("direct-lmht_L2_T2_uniform/seed0/checkpoint.pt")


def test_run_record_round_trip_and_failures(tmp_path):
    rec = RunRecord(
        top1=81.5,
        top1_per_step=[80.0, 81.5],
        mode="reparam",
        kind="snn",
        sops=float("nan"),
        reparam=ReparamResult(EvalSummary(81.6), EvalSummary(81.5), 99.0, -0.1, 4),
    )
    write_record(tmp_path / "ok" / "metrics.json", rec)
    status, reason, back = read_record(tmp_path / "ok" / "metrics.json")
    assert status == "ok" and reason == "" and back.sops is None  # non-finite -> null
    back.sops = rec.sops = None
    assert back == rec
    write_record(
        tmp_path / "bad" / "metrics.json", FailureRecord(mode="direct", error="x\nOOM: out of memory")
    )
    assert read_record(tmp_path / "bad" / "metrics.json")[:2] == ("failed", "failed: OOM: out of memory")
    assert read_record(tmp_path / "none" / "metrics.json")[0] == "missing"
    (tmp_path / "junk.json").write_text("{not json")
    assert read_record(tmp_path / "junk.json")[0] == "failed"
    (tmp_path / "odd.json").write_text(json.dumps({"top1": 1.0, "surprise": 2}))
    status, reason, _ = read_record(tmp_path / "odd.json")
    assert status == "failed" and "surprise" in reason


def test_modes_are_declared_once_with_their_parents():
    assert list(MODES) == ["ann", "convert", "hybrid", "direct", "reparam"]
    assert MODES["hybrid"].parent_key == "ann_checkpoint" and MODES["reparam"].parent_key == "snn_checkpoint"
    assert {m.rule for m in MODES.values()} == {
        "train_ann",
        "convert_eval",
        "finetune_hybrid",
        "train_direct",
        "reparam_eval",
    }
    from lmht.config import SCHEMA

    for mode in MODES.values():
        assert set(mode.inherits) <= set(SCHEMA), mode.name
        assert mode.parent_key is None or mode.parent_key in SCHEMA


def test_catalog_captions_exist_and_none_is_orphaned():
    captions = {REPO / e.caption for e in [*TABLES.values(), *FIGURES.values()]}
    assert all(p.is_file() for p in captions), [p for p in captions if not p.is_file()]
    on_disk = {
        p for kind in ("tables", "figures") for p in (REPO / "workflow" / "report" / kind).glob("*.rst")
    }
    assert on_disk == captions


def test_contract_is_importable_without_torch():
    code = (
        "import sys, lmht.experiment, lmht.experiment.grid, lmht.experiment.record; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'pandas')]; "
        "sys.exit(', '.join(bad) or None)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
