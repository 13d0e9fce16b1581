"""STBP / ANN training loop with verified checkpoints and exact resume.

A verified checkpoint (model, optimizer, scheduler, scaler, history, every RNG state including the
loader generator) is written atomically after each epoch (and every ``checkpoint_every`` steps); the
same command resumes from it and ends with the same metrics as an uninterrupted run. A non-finite loss
stops the run (:class:`NonFiniteLossError`) and keeps the last good checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lmht import checkpoint as ckpt_io
from lmht.experiment.record import EvalSummary

from .context import (
    Context,
    NonFiniteLossError,
    all_reduce,
    get_rng_state,
    log,
    progress,
    set_rng_state,
    versions,
)
from .data import Data
from .evaluate import autocast, evaluate, forward, summary, unwrap

__all__ = ["CHECKPOINT_FILE", "TrainState", "Trainer", "build_optimizer", "build_scheduler"]

CHECKPOINT_FILE = "checkpoint.pt"


def build_optimizer(cfg: Mapping[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW over every trainable parameter."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg["lr"],
            momentum=cfg["momentum"],
            weight_decay=cfg["weight_decay"],
            nesterov=cfg["nesterov"] and cfg["momentum"] > 0,
        )
    return torch.optim.AdamW(
        params, lr=cfg["lr"], betas=tuple(cfg["betas"]), weight_decay=cfg["weight_decay"]
    )


def build_scheduler(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """timm cosine schedule (with optional linear warm-up), stepped per epoch or per update; or None."""
    if cfg["scheduler"] == "none" or cfg["epochs"] == 0:
        return None
    from timm.scheduler import create_scheduler_v2

    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched=cfg["scheduler"],
        num_epochs=cfg["epochs"],
        min_lr=cfg["min_lr"],
        warmup_lr=cfg["warmup_lr"],
        warmup_epochs=cfg["warmup_epochs"],
        warmup_prefix=True,
        step_on_epochs=cfg["sched_on"] == "epoch",
        updates_per_epoch=steps_per_epoch,
    )
    return scheduler


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    step: int = 0  # completed steps inside the current epoch (mid-epoch checkpoint)
    best_top1: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    partial: dict[str, float] = field(default_factory=dict)  # running sums of the unfinished epoch
    epoch_rng: dict[str, Any] | None = None  # loader generator at the start of that epoch
    final_eval: EvalSummary | None = None


class Trainer:
    """STBP / ANN training loop with verified checkpoints and exact resume."""

    def __init__(
        self,
        mode: str,
        cfg: dict[str, Any],
        out: str,
        ctx: Context,
        model: nn.Module,
        data: Data,
        kind: str,
        chash: str,
        extra_state: Mapping[str, Any] | None = None,
    ):
        self.mode, self.cfg, self.out, self.ctx = mode, cfg, out, ctx
        self.kind, self.extra_state = kind, dict(extra_state or {})
        self.data = data
        self.snn = kind == "snn"
        model = model.to(ctx.device)
        if ctx.distributed:
            if cfg["sync_bn"]:
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )
        self.model = model
        self.optimizer = build_optimizer(cfg, unwrap(model))
        self.steps_per_epoch = len(data.train) if data.train is not None else 0
        self.scheduler = build_scheduler(cfg, self.optimizer, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler("cuda", enabled=ctx.device.type == "cuda" and cfg["amp"] == "fp16")
        if data.mixup is not None:
            from timm.loss import SoftTargetCrossEntropy

            self.criterion: nn.Module = SoftTargetCrossEntropy()
        else:
            self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
        self.state = TrainState()
        self.hash = chash
        self.t_start = time.perf_counter()  # start of this process's run (set by the caller)
        self.elapsed_before = 0.0  # wall time of earlier, interrupted processes of this run
        self.ckpt_path = os.path.join(out, CHECKPOINT_FILE)

    # ------------------------------------------------------------------ checkpoints
    def _generators(self) -> dict[str, torch.Generator | None]:
        return {"train_loader": self.data.generator}

    def save(self) -> None:
        if not self.ctx.is_main:
            return
        s = self.state
        payload = {
            "format": ckpt_io.CHECKPOINT_FORMAT,
            "mode": self.mode,
            "kind": self.kind,
            "config": self.cfg,
            "config_hash": self.hash,
            "epoch": s.epoch,
            "step": s.step,
            "best_top1": s.best_top1,
            "history": s.history,
            "partial": s.partial,
            "epoch_rng": s.epoch_rng,
            "final_eval": None if s.final_eval is None else dataclasses.asdict(s.final_eval),
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "rng": get_rng_state(self._generators()),
            "versions": versions(),
            "elapsed_s": self.elapsed_s(),
            **self.extra_state,
        }
        ckpt_io.save_checkpoint(self.ckpt_path, payload)

    def restore(self, saved: Mapping[str, Any]) -> None:
        unwrap(self.model).load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None and saved.get("scheduler") is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        self.state = TrainState(
            epoch=saved["epoch"],
            step=saved.get("step", 0),
            best_top1=saved["best_top1"],
            history=list(saved["history"]),
            partial=dict(saved.get("partial") or {}),
            epoch_rng=saved.get("epoch_rng"),
            final_eval=None if saved.get("final_eval") is None else EvalSummary(**saved["final_eval"]),
        )
        set_rng_state(saved["rng"], self._generators())
        self.elapsed_before = float(saved.get("elapsed_s", 0.0))
        done = f"{self.state.epoch} epoch(s)" + (f" + {self.state.step} step(s)" if self.state.step else "")
        log(self.ctx, f"resumed from {self.ckpt_path} after {done}")

    def elapsed_s(self) -> float:
        """Wall time of the run so far, including processes that were interrupted (up to their last
        checkpoint)."""
        return self.elapsed_before + time.perf_counter() - self.t_start

    # ------------------------------------------------------------------ loop
    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _epoch_iterator(self, epoch: int) -> Iterator:
        from lmht.data import set_epoch

        loader = self.data.train
        set_epoch(loader, epoch)
        s = self.state
        if s.step and s.epoch_rng is not None:
            # resume mid-epoch: replay the epoch's data order, skip the finished steps, then put back the
            # RNG state saved after them (augmentation of the next batch draws from it)
            after = get_rng_state(self._generators())
            set_rng_state(s.epoch_rng, self._generators())
            it = iter(loader)
            for _ in range(s.step):
                next(it)
            set_rng_state(after, self._generators())
            return it
        s.epoch_rng = get_rng_state(self._generators())
        s.partial = {}
        return iter(loader)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, ctx, s = self.cfg, self.ctx, self.state
        model = self.model
        model.train()
        if cfg["freeze_bn"]:
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        if self.scheduler is not None and s.step == 0:  # the learning rate the epoch starts with
            if cfg["sched_on"] == "epoch":
                self.scheduler.step(epoch)
            else:
                self.scheduler.step_update(epoch * self.steps_per_epoch)
        lr_start = s.partial.get("lr", self._lr())
        sums = {"loss": 0.0, "correct": 0.0, "n": 0.0, "seconds": 0.0, "lr": lr_start, **s.partial}
        t0 = time.perf_counter()
        it = self._epoch_iterator(epoch)
        bar = progress(
            it, cfg, ctx, f"epoch {epoch + 1}/{cfg['epochs']}", total=self.steps_per_epoch - s.step
        )
        for x, y in bar:
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            target = y
            if self.data.mixup is not None:
                x, target = self.data.mixup(x, y)
            if self.scheduler is not None and cfg["sched_on"] == "step":
                self.scheduler.step_update(epoch * self.steps_per_epoch + s.step)
            with autocast(cfg, ctx):
                logits = forward(model, x, self.snn)
                loss = self.criterion(logits.float().mean(0), target)
            value = float(loss.detach())
            if not math.isfinite(value):
                kept = (
                    f"the last good checkpoint {self.ckpt_path} is kept"
                    if os.path.exists(self.ckpt_path)
                    else "no checkpoint was written yet"
                )
                raise NonFiniteLossError(
                    f"non-finite training loss ({value}) at epoch {epoch + 1}, step {s.step + 1}: "
                    f"run stopped; {kept}. Lower lr, set grad_clip, or use amp=none/bf16."
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg["grad_clip"] > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            self.scaler.step(self.optimizer)
            self.scaler.update()
            with torch.no_grad():
                correct = float((logits.detach().mean(0).argmax(-1) == y).sum())
            sums["loss"] += value * y.shape[0]
            sums["correct"] += correct
            sums["n"] += y.shape[0]
            s.step += 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(
                    loss=f"{sums['loss'] / sums['n']:.4f}", acc=f"{100 * sums['correct'] / sums['n']:.2f}"
                )
            every = cfg["checkpoint_every"]
            if every and s.step % every == 0 and s.step < self.steps_per_epoch:
                s.partial = {**sums, "seconds": sums["seconds"] + time.perf_counter() - t0}
                self.save()
        sums["seconds"] += time.perf_counter() - t0
        loss, correct, n = all_reduce([sums["loss"], sums["correct"], sums["n"]], ctx)
        return {
            "train_loss": loss / max(n, 1),
            "train_acc": 100.0 * correct / max(n, 1),
            "lr": sums["lr"],
            "seconds": sums["seconds"],
        }

    def fit(self) -> None:
        cfg, s = self.cfg, self.state
        epochs = cfg["epochs"]
        while s.epoch < epochs:
            epoch = s.epoch
            train = self.train_epoch(epoch)
            t0 = time.perf_counter()
            last = epoch == epochs - 1
            result = evaluate(self.model, self.data.test, cfg, self.ctx, measure=last, desc="test")
            row = {
                "epoch": epoch + 1,
                "train_loss": train["train_loss"],
                "train_acc": train["train_acc"],
                "test_acc": result.top1,
                "test_loss": result.loss,
                "lr": train["lr"],
                "seconds": train["seconds"] + time.perf_counter() - t0,
            }
            s.history.append(row)
            s.best_top1 = result.top1 if s.best_top1 is None else max(s.best_top1, result.top1)
            s.epoch, s.step, s.partial, s.epoch_rng = epoch + 1, 0, {}, None
            if last:
                s.final_eval = summary(result)
            self.save()
            log(
                self.ctx,
                f"epoch {epoch + 1}/{epochs}  loss {row['train_loss']:.4f}  train {row['train_acc']:.2f}%  "
                f"test {row['test_acc']:.2f}%  lr {row['lr']:.3g}  {row['seconds']:.1f}s",
            )
