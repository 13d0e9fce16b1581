"""Every distinct cell of the `paper` suite builds and trains one step on synthetic data shaped like its data.

The paper suite runs on a GPU cluster for days; a cell that cannot even be built (a config error, an
architecture that does not fit its dataset, a DVS cell at a T the frames do not divide, a variant a
network does not support) would only show there, after the data were prepared and jobs queued. Here
each distinct cell (seed 0) is resolved exactly as the workflow resolves it (its dataset's preset, the
suite's layered settings, what its name fixes: lmht.experiment.grid.cell_settings), validated by
lmht.build.prepare, built with the engine's builders, and run for one SGD step (evaluation cells: one
forward) on a batch of 2 synthetic samples shaped like its dataset. Marked slow (about 2-4 minutes).
"""

from pathlib import Path

import pytest
import torch
import yaml

from lmht.build import build_ann, build_direct_snn, build_hybrid_snn, prepare
from lmht.config import resolve_config
from lmht.experiment import Cell, cell_settings, suite_cells
from lmht.experiment.grid import cell_preset

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
CONFIG["seeds"] = [0]
PAPER_CELLS = sorted({c for c in suite_cells(CONFIG, "paper")}, key=lambda c: (c.dataset, c.arch, c.name))
#: what the workflow sets that needs files: dropped, the data are synthetic and the parents built here
FILE_KEYS = ("data_root", "ann_checkpoint", "snn_checkpoint")


def resolved(cell: Cell, mode: str | None = None) -> dict:
    """The cell's config as the workflow would run it, on synthetic data of its dataset's shape."""
    settings = {k: v for k, v in cell_settings(CONFIG, "paper", cell).items() if k not in FILE_KEYS}
    dataset = settings.pop("dataset")
    settings.update(dataset="synthetic", dataset_options={"like": dataset, "length": 4}, batch_size=2,
                    device="cpu", workers=0, amp="none", epochs=1, mixup=0.0, cutmix=0.0)
    cfg = resolve_config(mode or cell.mode, cell_preset(CONFIG, "paper", cell.dataset) or None, settings)
    return prepare(mode or cell.mode, cfg, check_files=False).cfg


def batch(cfg: dict):
    from lmht.data import create_dataset

    data = create_dataset("synthetic", None, train=True, **cfg["dataset_options"])
    x = torch.stack([data[i][0] for i in range(2)])
    y = torch.tensor([data[i][1] for i in range(2)])
    return x, y, data.info


def step(model: torch.nn.Module, x, y) -> float:
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    out = model(x)
    out = out.mean(0) if out.dim() == 3 else out
    loss = torch.nn.functional.cross_entropy(out, y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    return float(loss.detach())


def network(cell: Cell, cfg: dict, info):
    """The cell's network; its parent built the same way (random weights: shapes and code paths matter)."""
    from lmht.convert import qcfs_to_if, reparameterize

    if cell.mode == "ann":
        return build_ann(cfg, info)
    if cell.mode == "direct":
        return build_direct_snn(cfg, info)
    parent = cell.parent()
    if cell.mode in ("convert", "hybrid"):
        ann = build_ann(resolved(parent), info).eval()
        if cell.mode == "convert":
            return qcfs_to_if(ann, cfg["T"], encoding=info.encoding, input_shape=tuple(info.input_size))
        return build_hybrid_snn(cfg, info, ann)
    source = network(parent, resolved(parent), info)
    return reparameterize(source)


def test_the_paper_suite_has_its_comparison_grids():
    names = {g["name"] for g in CONFIG["suites"]["paper"]["grids"]}
    assert {"hybrid_init", "tgim_param", "if_gradient", "table4_q4", "table3_dvs", "depth"} <= names
    by_name = {(c.dataset, c.arch, c.name) for c in PAPER_CELLS}
    for LT in ((2, 2), (2, 4), (4, 2)):  # Table 4's Q = 4 grid has all three (L, T) of the paper
        assert ("cifar100", "lmht_vgg16", f"hybrid-Q4_L{LT[0]}_T{LT[1]}_uniform") in by_name
    assert ("cifar10_dvs", "lmht_resnet18", "direct-lmht_L2_T4_uniform") in by_name
    assert any(c.variants for c in PAPER_CELLS)


@pytest.mark.slow
@pytest.mark.parametrize("cell", PAPER_CELLS, ids=lambda c: f"{c.dataset}-{c.arch}-{c.name}")
def test_every_paper_cell_builds_and_trains_one_step(cell):
    torch.manual_seed(0)
    cfg = resolved(cell)
    x, y, info = batch(cfg)
    model = network(cell, cfg, info)
    if cell.mode in ("convert", "reparam"):
        with torch.no_grad():
            out = model.eval()(x)
        assert out.shape[-2:] == (2, info.num_classes) and torch.isfinite(out).all()
    else:
        step(model, x, y)
