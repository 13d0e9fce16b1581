"""One function per run: :func:`run` dispatches to training (ann, hybrid, direct), conversion or
reparameterization and writes the run's outputs; the run record is ``lmht.experiment.record.RunRecord``.

Outputs in ``out``: ``config.yaml`` (the resolved config, written first), ``checkpoint.pt`` (training
modes), ``train_log.csv``, ``tgim.json`` and, last, ``metrics.json`` (its presence marks the run
complete). A run whose ``metrics.json`` matches the config returns at once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from lmht import checkpoint as ckpt_io
from lmht import diagnostics
from lmht import metrics as M
from lmht.build import (
    Prepared,
    build_ann,
    build_direct_snn,
    build_hybrid_snn,
    dataset_options,
    prepare,
    rebuild,
)
from lmht.config import ANN_NEURONS, as_yaml, config_diff, config_hash
from lmht.experiment.record import METRICS_FILE, ReparamResult, RunRecord, read_record, write_record
from lmht.experiment.variants import VARIANTS

from .context import (
    Context,
    RunError,
    all_reduce,
    device_description,
    log,
    seed_everything,
    setup_context,
    versions,
)
from .data import build_data
from .evaluate import evaluate, summary, unwrap
from .trainer import CHECKPOINT_FILE, Trainer

__all__ = ["CONFIG_FILE", "LOG_FILE", "TGIM_FILE", "run", "tgim_summary"]

LOG_FILE = "train_log.csv"
TGIM_FILE = "tgim.json"
CONFIG_FILE = "config.yaml"
LOG_COLUMNS = ["epoch", "train_loss", "train_acc", "test_acc", "test_loss", "lr", "seconds"]


# ==================================================================================================
# Outputs
# ==================================================================================================
def tgim_summary(model: nn.Module) -> dict[str, Any]:
    """Per spiking layer: T-GIM (nested lists, or null), leak, L, T, threshold."""
    out: dict[str, Any] = {}
    net = unwrap(model)
    for name, layer in M.spiking_layers(net):
        neuron = getattr(layer, "neuron", layer)
        tgim = getattr(neuron, "tgim", None)
        leak = getattr(neuron, "leak", None)
        out[name] = {
            "tgim": tgim.detach().cpu().double().tolist() if isinstance(tgim, torch.Tensor) else None,
            "leak": float(leak.detach()) if isinstance(leak, torch.Tensor) else leak,
            "L": int(neuron.L),
            "T": int(neuron.T),
            "threshold": M.threshold_of(layer),
            "v_init": getattr(neuron, "v_init", None),
            "neuron": type(neuron).__name__,
        }
    return out


def _write_outputs(out: str, record: RunRecord, model: nn.Module | None, ctx: Context) -> None:
    if not ctx.is_main:
        return
    import pandas as pd

    ckpt_io.atomic_write_text(
        os.path.join(out, LOG_FILE), pd.DataFrame(record.history, columns=LOG_COLUMNS).to_csv(index=False)
    )
    if model is not None:
        ckpt_io.atomic_write_json(os.path.join(out, TGIM_FILE), tgim_summary(model))
    write_record(os.path.join(out, METRICS_FILE), record)  # last: marks the run complete


# ==================================================================================================
# Entry point
# ==================================================================================================
def _completed(out: str, cfg: Mapping[str, Any], chash: str, restart: bool) -> bool:
    path = os.path.join(out, METRICS_FILE)
    if restart or not os.path.exists(path):
        return False
    status, _, done = read_record(path)
    if status != "ok":
        return False
    if done.config_hash == chash:
        return True
    raise RunError(
        f"{path} holds a finished run with a different configuration "
        f"(differs in: {_describe_diff(done.config, cfg)}); rerun with --restart to "
        "overwrite it, or use another --out"
    )


def _describe_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    diff = config_diff(old, new)
    return ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items()) or "input checkpoint"


def run(
    mode: str | Prepared, cfg: Mapping[str, Any] | None = None, out: str | None = None, restart: bool = False
) -> RunRecord | None:
    """Run one configuration; write its outputs to ``out``; return the run record.

    ``mode`` is either a :class:`lmht.build.Prepared` run (config already inherited and validated; the
    CLI's path) or a mode name with a resolved ``cfg``, which is prepared here. Returns None when
    ``out`` already holds a finished run of the same configuration.
    """
    t_start = time.perf_counter()
    prepared = mode if isinstance(mode, Prepared) else prepare(mode, cfg)
    if out is None:
        raise ValueError("run: out (the output folder) is required")
    mode, cfg = prepared.mode, dict(prepared.cfg)
    ctx = setup_context(cfg["device"])
    from lmht import data as D

    info = D.dataset_info(cfg["dataset"], **dataset_options(cfg))
    chash = config_hash({**cfg, "input_checkpoint_sha256": prepared.input_digest}, mode)
    if _completed(out, cfg, chash, restart):
        log(ctx, f"{os.path.join(out, METRICS_FILE)}: finished run of this configuration; nothing to do")
        return None
    os.makedirs(out, exist_ok=True)
    if restart and ctx.is_main:
        for name in (METRICS_FILE, CHECKPOINT_FILE, CHECKPOINT_FILE + ".sha256"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(out, name))
    if ctx.distributed:
        dist.barrier()
    seed_everything(cfg["seed"], cfg["deterministic"])
    if ctx.is_main:
        ckpt_io.atomic_write_text(os.path.join(out, CONFIG_FILE), as_yaml(cfg))
    parent_model = None
    if prepared.parent is not None:
        parent_model = rebuild(prepared.parent, info).to(ctx.device)
    if mode == "convert":
        record, model = _run_convert(cfg, ctx, info, parent_model, prepared.parent)
    elif mode == "reparam":
        record, model = _run_reparam(cfg, ctx, parent_model, prepared.parent)
    else:
        record, model = _run_training(
            mode, cfg, out, ctx, info, parent_model, prepared.parent, chash, restart, t_start
        )
    record.mode = mode
    record.params = M.count_params(unwrap(model))
    if record.wall_time_s is None:
        record.wall_time_s = time.perf_counter() - t_start
    record.device = device_description(ctx)
    record.world_size = ctx.world_size
    record.versions = versions()
    record.config = dict(cfg)
    record.config_hash = chash
    record.input_checkpoint_sha256 = prepared.input_digest
    record.inherited_from_checkpoint = prepared.inherited
    record.variants = {key: cfg[key] for key in VARIANTS}
    _write_outputs(out, record, model, ctx)
    if ctx.distributed:
        dist.barrier()
    return record


def _run_training(mode, cfg, out, ctx, info, ann, parent, chash, restart, t_start):
    data = build_data(cfg, ctx, train=cfg["epochs"] > 0)
    extra: dict[str, Any] = {}
    ann_top1 = None
    if mode == "hybrid":
        ann_top1 = evaluate(ann, data.test, cfg, ctx, desc="ANN").top1
        model, kind = build_hybrid_snn(cfg, info, ann), "snn"
        extra["ann_model"] = ann.state_dict()
        extra["ann_checkpoint_config"] = parent["config"]
    elif mode == "ann" or cfg["neuron"] in ANN_NEURONS:
        model, kind = build_ann(cfg, info), "ann"
    else:
        model, kind = build_direct_snn(cfg, info), "snn"
    trainer = Trainer(mode, cfg, out, ctx, model, data, kind, chash, extra)
    trainer.t_start = t_start
    init_top1 = None
    saved = None
    if os.path.exists(trainer.ckpt_path) and cfg["resume"] and not restart:
        saved = ckpt_io.load_checkpoint(trainer.ckpt_path)  # on the CPU: RNG states must stay there
        if saved.get("config_hash") != chash:
            raise RunError(
                f"{trainer.ckpt_path} was written by a run with a different configuration "
                f"(differs in: {_describe_diff(saved['config'], cfg)}); "
                "rerun with --restart to start over, or use another --out"
            )
    if mode == "hybrid":
        init_top1 = saved["init_top1"] if saved is not None else None
        if init_top1 is None:
            init_top1 = evaluate(trainer.model, data.test, cfg, ctx, desc="init").top1
            log(ctx, f"hybrid init: ANN {ann_top1:.2f}%  LM-HT (T={cfg['T']}, L={cfg['L']}) {init_top1:.2f}%")
        trainer.extra_state["init_top1"] = init_top1
    if saved is not None:
        trainer.restore(saved)
    trainer.fit()
    s = trainer.state
    final = s.final_eval
    if final is None:  # epochs == 0
        final = summary(evaluate(trainer.model, data.test, cfg, ctx, measure=True, desc="test"))
    record = RunRecord(
        **vars(final),
        kind=kind,
        best_top1=s.best_top1 if s.best_top1 is not None else final.top1,
        history=s.history,
        wall_time_s=trainer.elapsed_s(),
        warnings=data.warnings
        + diagnostics.report(diagnostics.divergence_warnings(s.history, info.num_classes), ctx.is_main),
    )
    if mode == "hybrid":
        record.init_top1, record.ann_top1 = init_top1, ann_top1
        record.ann_levels = parent["config"]["levels"]
    return record, trainer.model


def _run_convert(cfg, ctx, info, ann, parent):
    from lmht.convert import qcfs_to_if

    data = build_data(cfg, ctx, train=False)
    ann_top1 = evaluate(ann, data.test, cfg, ctx, desc="ANN").top1
    steps = cfg["convert_steps"]
    snn = qcfs_to_if(
        ann, steps, encoding=info.encoding, input_shape=tuple(info.input_size), frame_input=cfg["frame_input"]
    ).to(ctx.device)
    curve = evaluate(snn, data.test, cfg, ctx, desc=f"T={steps}").top1_per_step
    snn.T = cfg["T"]
    at_t = summary(evaluate(snn, data.test, cfg, ctx, measure=True, desc=f"T={cfg['T']}"))
    at_t.top1, at_t.top1_per_step = curve[cfg["T"] - 1], curve
    record = RunRecord(
        **vars(at_t),
        kind="snn",
        best_top1=max(curve),
        top1_at={str(t + 1): acc for t, acc in enumerate(curve)},
        ann_top1=ann_top1,
        ann_levels=parent["config"]["levels"],
        warnings=data.warnings,
    )
    return record, snn


def _run_reparam(cfg, ctx, snn, parent):
    from lmht.convert import reparameterize

    data = build_data(cfg, ctx, train=False)
    before = evaluate(snn, data.test, cfg, ctx, measure=True, keep_predictions=True, desc="LM-HT")
    try:
        single = reparameterize(snn).to(ctx.device)
    except ValueError as exc:
        raise RunError(f"{cfg['snn_checkpoint']}: cannot reparameterize this network: {exc}") from exc
    after = evaluate(single, data.test, cfg, ctx, measure=True, keep_predictions=True, desc="single")
    same, n = all_reduce(
        [float((before.predictions == after.predictions).sum()), float(len(after.predictions))], ctx
    )
    after_summary = summary(after)
    record = RunRecord(
        **vars(after_summary),
        kind="snn",
        best_top1=after.top1,
        reparam=ReparamResult(
            before=summary(before),
            after=summary(after),
            agreement=100.0 * same / n,
            delta_top1=after.top1 - before.top1,
            T_after=cfg["T"] * cfg["L"],
        ),
        source_mode=parent["mode"],
        warnings=data.warnings,
    )
    return record, single
