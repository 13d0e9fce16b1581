"""Evaluation: accuracy of the cumulative output after each time step, loss, firing rates, SOPs, energy."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lmht import metrics as M
from lmht.experiment.record import EvalSummary

from .context import Context, RunError, all_reduce, progress

__all__ = ["EvalResult", "autocast", "evaluate", "forward", "is_snn", "summary", "unwrap"]


def is_snn(model: nn.Module) -> bool:
    return hasattr(model, "spiking_layers")


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def autocast(cfg: Mapping[str, Any], ctx: Context):
    if ctx.device.type != "cuda" or cfg["amp"] == "none":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if cfg["amp"] == "bf16" else torch.float16)


def forward(model: nn.Module, x: torch.Tensor, snn: bool) -> torch.Tensor:
    """Logits ``[T, B, C]`` (``T = 1`` for an ANN; an ANN averages event frames ``[B, F, ...]``)."""
    if not snn and x.dim() == 5:
        x = x.mean(1)
    out = model(x)
    return out.unsqueeze(0) if out.dim() == 2 else out


# ==================================================================================================
# Evaluation
# ==================================================================================================
@dataclass
class EvalResult:
    top1_per_step: list[float]
    loss: float
    images: int
    firing_rate: dict[str, float] = field(default_factory=dict)
    ops: dict[str, Any] = field(default_factory=dict)
    predictions: torch.Tensor | None = None

    @property
    def top1(self) -> float:
        return self.top1_per_step[-1]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    cfg: Mapping[str, Any],
    ctx: Context,
    measure: bool = False,
    keep_predictions: bool = False,
    desc: str = "eval",
) -> EvalResult:
    """Accuracy of the cumulative output after each step; with ``measure`` also firing rates and SOPs."""
    model.eval()
    net = unwrap(model)
    snn = is_snn(net)
    firing = M.FiringRateMonitor(net) if measure and snn else None
    ops = M.SynapticOpsCounter(net) if measure else None
    correct: torch.Tensor | None = None
    loss_sum, images, preds = 0.0, 0, []
    try:
        for x, y in progress(loader, cfg, ctx, desc):
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            with autocast(cfg, ctx):
                logits = forward(model, x, snn)
            logits = logits.float()
            c = M.correct_per_step(logits, y).double()
            correct = c if correct is None else correct + c
            loss_sum += float(F.cross_entropy(logits.mean(0), y, reduction="sum"))
            images += y.shape[0]
            if keep_predictions:
                preds.append(logits.mean(0).argmax(-1).cpu())
    finally:
        if firing is not None:
            firing.remove()
        if ops is not None:
            ops.remove()
    if correct is None:
        raise RunError("the test set is empty")
    reduced = all_reduce([*correct.tolist(), loss_sum, float(images)], ctx)
    n = reduced[-1]
    result = EvalResult([100.0 * c / n for c in reduced[:-2]], reduced[-2] / n, int(n))
    if firing is not None:
        names = list(firing.sums)
        vals = all_reduce([firing.sums[k] for k in names] + [float(firing.counts[k]) for k in names], ctx)
        result.firing_rate = {
            k: (vals[i] / vals[i + len(names)] if vals[i + len(names)] else 0.0) for i, k in enumerate(names)
        }
    if ops is not None:  # sums over every process, then per image (lmht.metrics.OpsReport)
        keys = list(M.OPS_FIELDS)
        sums = all_reduce([ops.totals[k] for k in keys] + [float(ops.images)], ctx)
        result.ops = ops.report(dict(zip(keys, sums[:-1], strict=True)), sums[-1]).as_dict()
        if ctx.distributed:  # per-layer counts are this process's only
            result.ops["per_layer"] = {}
    if keep_predictions:
        result.predictions = torch.cat(preds)
    return result


def summary(r: EvalResult) -> EvalSummary:
    """The record form of an evaluation (what metrics.json stores)."""
    return EvalSummary(
        top1=r.top1,
        top1_per_step=r.top1_per_step,
        test_loss=r.loss,
        firing_rate=r.firing_rate,
        sops=r.ops.get("sops"),
        sops_value=r.ops.get("sops_value"),
        first_layer_macs=r.ops.get("first_layer_macs"),
        energy_mj=r.ops.get("energy_mj"),
        energy_first_layer_mac_mj=r.ops.get("energy_first_layer_mac_mj"),
        ann_macs=r.ops.get("ann_macs"),
        ann_energy_mj=r.ops.get("ann_energy_mj"),
        as_ratio=r.ops.get("as_ratio"),
        sops_per_layer=r.ops.get("per_layer", {}),
    )
