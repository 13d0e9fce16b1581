"""Training and evaluation engine behind the ``lmht`` CLI: one function per run, :func:`run`.

Modes (see ``lmht --help`` and the spec's "Training modes"):

``ann``      train a ReLU (``levels = 0``) or QCFS (``levels = Q``) ANN with cross-entropy.
``convert``  QCFS ANN checkpoint -> IF SNN (``qcfs_to_if``), accuracy of the cumulative output after each
             of ``convert_steps`` steps; no training.
``hybrid``   QCFS ANN checkpoint -> LM-HT SNN (``qcfs_to_lmht``, exact init), evaluate, STBP fine-tune.
``direct``   ReLU ANN -> SNN (``build_snn``) trained from scratch with STBP (``neuron: relu|qcfs`` trains
             the ANN instead).
``reparam``  LM-HT SNN checkpoint -> single-threshold SNN over T·L steps (``reparameterize``); evaluate
             both and their prediction agreement.

SNN loss: cross-entropy of the time-mean logits (the model returns ``[T, B, classes]``).

Fault tolerance: a verified checkpoint (model, optimizer, scheduler, scaler, history, every RNG state
including the loader generator) is written atomically after each epoch (and every ``checkpoint_every``
steps); the same command resumes from it and ends with the same metrics as an uninterrupted run. A
run whose ``metrics.json`` matches the config returns at once. A non-finite loss stops the run
(:class:`NonFiniteLossError`) and keeps the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import lmht
from lmht import checkpoint as ckpt_io
from lmht import diagnostics
from lmht import metrics as M
from lmht.config import (
    ANN_NEURONS,
    config_diff,
    config_hash,
    dataset_options,
    hybrid_kwargs,
    neuron_kwargs,
)

__all__ = ["NonFiniteLossError", "RunError", "run"]

METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "train_log.csv"
TGIM_FILE = "tgim.json"
CONFIG_FILE = "config.yaml"

#: keys that define the network of a checkpoint; runs built on a checkpoint inherit them
_ANN_KEYS = ("dataset", "arch", "levels", "qcfs_threshold")
_SNN_KEYS = (
    *_ANN_KEYS,
    "neuron",
    "L",
    "T",
    "threshold",
    "v_init",
    "tgim_init",
    "learn_tgim",
    "leak",
    "learn_leak",
    "surrogate",
    "frames",
)


class RunError(RuntimeError):
    """A run that cannot proceed (message says why and what to do). CLI exit code 2."""


class NonFiniteLossError(RunError):
    """The training loss became NaN or infinite. CLI exit code 3."""


# ==================================================================================================
# Process, device, seeds
# ==================================================================================================
@dataclass
class Context:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_context(device: str) -> Context:
    """Pick the device and, under ``torchrun`` (``WORLD_SIZE > 1``), join the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RunError(f"device={device}: CUDA is not available on this machine (use device=cpu)")
    if device == "cuda":
        device = f"cuda:{local if world > 1 else torch.cuda.current_device()}"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Context(dev, rank, world, local)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); optionally force deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (global NumPy RNG: timm Mixup draws from it)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def get_rng_state(generators: Mapping[str, torch.Generator | None] | None = None) -> dict[str, Any]:
    """Every RNG state a run depends on: python, NumPy (global), torch CPU/CUDA and named generators."""
    generators = generators or {}
    state = {
        "python": random.getstate(),
        "numpy": ckpt_io.numpy_rng_state(),  # a list, not an ndarray: checkpoints are weights-only
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "generators": {k: g.get_state() for k, g in generators.items() if g is not None},
    }
    return state


def set_rng_state(
    state: Mapping[str, Any], generators: Mapping[str, torch.Generator | None] | None = None
) -> None:
    """Restore what :func:`get_rng_state` returned."""
    generators = generators or {}
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for key, g in generators.items():
        if g is not None and key in state.get("generators", {}):
            g.set_state(state["generators"][key])


@functools.cache
def _git_commit() -> str | None:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def versions() -> dict[str, Any]:
    """Python, torch, timm and lmht versions and the git commit of the lmht source (None outside git)."""
    import timm

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "lmht": lmht.__version__,
        "git_commit": _git_commit(),
    }


def device_description(ctx: Context) -> str:
    if ctx.device.type == "cuda":
        name = torch.cuda.get_device_name(ctx.device)
        return f"{name} x{ctx.world_size}" if ctx.distributed else name
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _log(ctx: Context, msg: str) -> None:
    if ctx.is_main:
        print(msg, flush=True)


# ==================================================================================================
# Data
# ==================================================================================================
@dataclass
class Data:
    info: Any
    train: Any | None
    test: Any
    mixup: Any | None
    warnings: list[str] = field(default_factory=list)  # lmht.diagnostics.input_warnings

    @property
    def generator(self) -> torch.Generator | None:
        return getattr(self.train, "generator", None)


def build_data(cfg: Mapping[str, Any], ctx: Context, train: bool) -> Data:
    """Datasets and loaders through ``lmht.data``: order and augmentation are functions of (seed, epoch,
    sample), the data itself (subsets, synthetic samples) of ``data_seed``; DistributedSampler under DDP."""
    from lmht import data as D

    options = dataset_options(cfg)
    info = D.dataset_info(cfg["dataset"], **options)
    test_set = D.create_dataset(
        cfg["dataset"],
        cfg["data_root"],
        train=False,
        subset=cfg["test_subset"],
        seed=cfg["data_seed"],
        **options,
    )
    pin = ctx.device.type == "cuda"
    test = D.create_loader(
        test_set,
        cfg["eval_batch_size"] or cfg["batch_size"],
        train=False,
        seed=cfg["seed"],
        workers=cfg["workers"],
        distributed=ctx.distributed,
        pin_memory=pin,
    )
    train_loader, mixup = None, None
    if train:
        train_set = D.create_dataset(
            cfg["dataset"],
            cfg["data_root"],
            train=True,
            augment=cfg["augment"],
            autoaugment=cfg["autoaugment"],
            cutout=cfg["cutout"],
            subset=cfg["train_subset"],
            seed=cfg["data_seed"],
            **options,
        )
        train_loader = D.create_loader(
            train_set,
            cfg["batch_size"],
            train=True,
            seed=cfg["seed"],
            workers=cfg["workers"],
            distributed=ctx.distributed,
            pin_memory=pin,
        )
        if len(train_loader) == 0:
            raise RunError(
                f"the training set ({len(train_set)} samples) is smaller than one batch "
                f"(batch_size={cfg['batch_size']})"
            )
        mixup = D.create_mixup(cfg, info.num_classes)
    warnings = diagnostics.report(
        diagnostics.check_inputs(cfg, info.num_classes, train_set if train else None, test_set), ctx.is_main
    )
    return Data(info, train_loader, test, mixup, warnings)


# ==================================================================================================
# Models
# ==================================================================================================
def _is_snn(model: nn.Module) -> bool:
    return hasattr(model, "spiking_layers")


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def build_ann(cfg: Mapping[str, Any], info: Any) -> nn.Module:
    """ReLU ANN ``cfg.arch``, with QCFS activations when ``cfg.levels >= 1``."""
    from lmht.convert import relu_to_qcfs
    from lmht.models import create_model

    model = create_model(
        cfg["arch"], num_classes=info.num_classes, in_chans=info.in_chans, **cfg["model_options"]
    )
    if cfg["levels"] > 0:
        relu_to_qcfs(model, cfg["levels"], threshold=cfg["qcfs_threshold"])
    return model


def build_direct_snn(cfg: Mapping[str, Any], info: Any) -> nn.Module:
    from lmht.convert import build_snn
    from lmht.models import create_model

    ann = create_model(
        cfg["arch"], num_classes=info.num_classes, in_chans=info.in_chans, **cfg["model_options"]
    )
    return build_snn(
        ann,
        cfg["neuron"],
        cfg["L"],
        cfg["T"],
        tuple(info.input_size),
        encoding=info.encoding,
        threshold=cfg["threshold"],
        **neuron_kwargs(cfg),
    )


def build_hybrid_snn(cfg: Mapping[str, Any], info: Any, ann: nn.Module) -> nn.Module:
    from lmht.convert import qcfs_to_lmht

    return qcfs_to_lmht(
        ann,
        cfg["L"],
        cfg["T"],
        tuple(info.input_size),
        encoding=info.encoding,
        exact=True,
        **hybrid_kwargs(cfg),
    )


def _inherit(cfg: dict[str, Any], source: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Set the network-defining ``keys`` of ``cfg`` from a parent checkpoint's config; return what changed."""
    changed = {}
    for key in keys:
        if key in source and cfg.get(key) != source[key]:
            changed[key] = {"config": cfg.get(key), "checkpoint": source[key]}
            cfg[key] = source[key]
    return changed


def load_ann(path: str, info: Any, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """QCFS ANN from the checkpoint of an ``ann`` run (or a ``direct`` run with ``neuron: qcfs``)."""
    state = ckpt_io.load_checkpoint(path, modes=("ann", "direct"))
    if state.get("kind") != "ann" or state["config"].get("levels", 0) < 1:
        raise RunError(f"{path}: not a QCFS ANN checkpoint (train one with `lmht ann levels=Q`, Q >= 1)")
    model = build_ann(state["config"], info)
    model.load_state_dict(state["model"])
    return model.to(device), state


def load_snn(path: str, info: Any, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """SNN from the checkpoint of a ``direct`` or ``hybrid`` run (rebuilt as it was trained)."""
    state = ckpt_io.load_checkpoint(path, modes=("direct", "hybrid"))
    if state.get("kind") != "snn":
        raise RunError(f"{path}: not an SNN checkpoint (an ANN trained in direct mode?)")
    cfg = state["config"]
    if state["mode"] == "hybrid":
        ann = build_ann(cfg, info)
        ann.load_state_dict(state["ann_model"])
        model = build_hybrid_snn(cfg, info, ann)
    else:
        model = build_direct_snn(cfg, info)
    model.load_state_dict(state["model"])
    return model.to(device), state


# ==================================================================================================
# Optimization
# ==================================================================================================
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


def _autocast(cfg: Mapping[str, Any], ctx: Context):
    if ctx.device.type != "cuda" or cfg["amp"] == "none":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if cfg["amp"] == "bf16" else torch.float16)


def _forward(model: nn.Module, x: torch.Tensor, snn: bool) -> torch.Tensor:
    """Logits ``[T, B, C]`` (``T = 1`` for an ANN; an ANN averages event frames ``[B, F, ...]``)."""
    if not snn and x.dim() == 5:
        x = x.mean(1)
    out = model(x)
    return out.unsqueeze(0) if out.dim() == 2 else out


def _progress(iterable, cfg: Mapping[str, Any], ctx: Context, desc: str, total: int | None = None):
    enabled = cfg["progress"] and ctx.is_main and sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


def _all_reduce(values: list[float], ctx: Context) -> list[float]:
    if not ctx.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()


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
    snn = _is_snn(net)
    firing = M.FiringRateMonitor(net) if measure and snn else None
    ops = M.SynapticOpsCounter(net) if measure else None
    correct: torch.Tensor | None = None
    loss_sum, images, preds = 0.0, 0, []
    try:
        for x, y in _progress(loader, cfg, ctx, desc):
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            with _autocast(cfg, ctx):
                logits = _forward(model, x, snn)
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
    reduced = _all_reduce([*correct.tolist(), loss_sum, float(images)], ctx)
    n = reduced[-1]
    result = EvalResult([100.0 * c / n for c in reduced[:-2]], reduced[-2] / n, int(n))
    if firing is not None:
        names = list(firing.sums)
        vals = _all_reduce([firing.sums[k] for k in names] + [float(firing.counts[k]) for k in names], ctx)
        result.firing_rate = {
            k: (vals[i] / vals[i + len(names)] if vals[i + len(names)] else 0.0) for i, k in enumerate(names)
        }
    if ops is not None:
        acs, macs, imgs = _all_reduce([ops.acs, ops.macs, float(ops.images)], ctx)
        imgs = max(imgs, 1.0)
        per_layer = ops.report().per_layer if not ctx.distributed else {}
        result.ops = {
            "sops": acs / imgs,
            "macs": macs / imgs,
            "energy_mj": M.energy_mj(acs / imgs, macs / imgs),
            "per_layer": per_layer,
        }
    if keep_predictions:
        result.predictions = torch.cat(preds)
    return result


def _eval_summary(r: EvalResult) -> dict[str, Any]:
    return {
        "top1": r.top1,
        "top1_per_step": r.top1_per_step,
        "test_loss": r.loss,
        "firing_rate": r.firing_rate,
        "sops": r.ops.get("sops"),
        "macs": r.ops.get("macs"),
        "energy_mj": r.ops.get("energy_mj"),
        "sops_per_layer": r.ops.get("per_layer", {}),
    }


# ==================================================================================================
# Training
# ==================================================================================================
@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    step: int = 0  # completed steps inside the current epoch (mid-epoch checkpoint)
    best_top1: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    partial: dict[str, float] = field(default_factory=dict)  # running sums of the unfinished epoch
    epoch_rng: dict[str, Any] | None = None  # loader generator at the start of that epoch
    final_eval: dict[str, Any] | None = None


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
            "final_eval": s.final_eval,
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
            final_eval=saved.get("final_eval"),
        )
        set_rng_state(saved["rng"], self._generators())
        self.elapsed_before = float(saved.get("elapsed_s", 0.0))
        done = f"{self.state.epoch} epoch(s)" + (f" + {self.state.step} step(s)" if self.state.step else "")
        _log(self.ctx, f"resumed from {self.ckpt_path} after {done}")

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
        bar = _progress(
            it, cfg, ctx, f"epoch {epoch + 1}/{cfg['epochs']}", total=self.steps_per_epoch - s.step
        )
        for x, y in bar:
            x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
            target = y
            if self.data.mixup is not None:
                x, target = self.data.mixup(x, y)
            if self.scheduler is not None and cfg["sched_on"] == "step":
                self.scheduler.step_update(epoch * self.steps_per_epoch + s.step)
            with _autocast(cfg, ctx):
                logits = _forward(model, x, self.snn)
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
        loss, correct, n = _all_reduce([sums["loss"], sums["correct"], sums["n"]], ctx)
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
                s.final_eval = _eval_summary(result)
            self.save()
            _log(
                self.ctx,
                f"epoch {epoch + 1}/{epochs}  loss {row['train_loss']:.4f}  train {row['train_acc']:.2f}%  "
                f"test {row['test_acc']:.2f}%  lr {row['lr']:.3g}  {row['seconds']:.1f}s",
            )


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


def _write_outputs(
    out: str, metrics: dict[str, Any], history: list[dict[str, Any]], model: nn.Module | None, ctx: Context
) -> None:
    if not ctx.is_main:
        return
    import pandas as pd

    columns = ["epoch", "train_loss", "train_acc", "test_acc", "test_loss", "lr", "seconds"]
    ckpt_io.atomic_write_text(
        os.path.join(out, LOG_FILE), pd.DataFrame(history, columns=columns).to_csv(index=False)
    )
    if model is not None:
        ckpt_io.atomic_write_json(os.path.join(out, TGIM_FILE), tgim_summary(model))
    ckpt_io.atomic_write_json(os.path.join(out, METRICS_FILE), metrics)  # last: marks the run complete


def _base_metrics(
    mode: str, cfg: Mapping[str, Any], ctx: Context, model: nn.Module, t_start: float, chash: str
) -> dict[str, Any]:
    return {
        "mode": mode,
        "params": M.count_params(unwrap(model)),
        "wall_time_s": time.perf_counter() - t_start,
        "device": device_description(ctx),
        "world_size": ctx.world_size,
        "versions": versions(),
        "config": dict(cfg),
        "config_hash": chash,
    }


# ==================================================================================================
# Entry point
# ==================================================================================================
def _completed(out: str, cfg: Mapping[str, Any], chash: str, restart: bool) -> bool:
    path = os.path.join(out, METRICS_FILE)
    if restart or not os.path.exists(path):
        return False
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            done = json.load(fh)
    except (OSError, ValueError):
        return False
    if done.get("config_hash") == chash:
        return True
    raise RunError(
        f"{path} holds a finished run with a different configuration "
        f"(differs in: {_describe_diff(done.get('config', {}), cfg)}); rerun with --restart to "
        "overwrite it, or use another --out"
    )


def _describe_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    diff = config_diff(old, new)
    return ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items()) or "input checkpoint"


def _input_digest(cfg: Mapping[str, Any], mode: str) -> str | None:
    key = {"convert": "ann_checkpoint", "hybrid": "ann_checkpoint", "reparam": "snn_checkpoint"}.get(mode)
    return ckpt_io.sha256_file(cfg[key]) if key else None


def run(mode: str, cfg: dict[str, Any], out: str, restart: bool = False) -> dict[str, Any] | None:
    """Run one validated configuration in ``mode``; write outputs to ``out``; return the metrics.

    Returns None when ``out`` already holds a finished run of the same configuration.
    """
    t_start = time.perf_counter()
    ctx = setup_context(cfg["device"])
    cfg = dict(cfg)
    from lmht import data as D

    info = D.dataset_info(cfg["dataset"], **dataset_options(cfg))
    input_digest = _input_digest(cfg, mode)
    # networks built on a checkpoint inherit its architecture keys (before hashing the config)
    parent, parent_model, inherited = None, None, {}
    if mode in ("convert", "hybrid"):
        parent_model, parent = load_ann(cfg["ann_checkpoint"], info, ctx.device)
        inherited = _inherit(cfg, parent["config"], _ANN_KEYS)
    elif mode == "reparam":
        parent_model, parent = load_snn(cfg["snn_checkpoint"], info, ctx.device)
        inherited = _inherit(cfg, parent["config"], _SNN_KEYS)
    if mode == "direct" and cfg["neuron"] == "relu":
        cfg["levels"] = 0  # a ReLU ANN
    chash = config_hash({**cfg, "input_checkpoint_sha256": input_digest}, mode)
    if _completed(out, cfg, chash, restart):
        _log(ctx, f"{os.path.join(out, METRICS_FILE)}: finished run of this configuration; nothing to do")
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
        from lmht.config import as_yaml

        ckpt_io.atomic_write_text(os.path.join(out, CONFIG_FILE), as_yaml(cfg))
    if mode == "convert":
        metrics = _run_convert(cfg, ctx, info, parent_model, parent)
    elif mode == "reparam":
        metrics = _run_reparam(cfg, ctx, info, parent_model, parent)
    else:
        metrics = _run_training(mode, cfg, out, ctx, info, parent_model, parent, chash, restart, t_start)
    metrics, history, model = metrics
    metrics = {**_base_metrics(mode, cfg, ctx, model, t_start, chash), **metrics}
    metrics["input_checkpoint_sha256"] = input_digest
    metrics["inherited_from_checkpoint"] = inherited
    _write_outputs(out, metrics, history, model, ctx)
    if ctx.distributed:
        dist.barrier()
    return metrics


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
            _log(
                ctx, f"hybrid init: ANN {ann_top1:.2f}%  LM-HT (T={cfg['T']}, L={cfg['L']}) {init_top1:.2f}%"
            )
        trainer.extra_state["init_top1"] = init_top1
    if saved is not None:
        trainer.restore(saved)
    trainer.fit()
    s = trainer.state
    final = s.final_eval
    if final is None:  # epochs == 0
        final = _eval_summary(evaluate(trainer.model, data.test, cfg, ctx, measure=True, desc="test"))
    metrics = {
        **final,
        "best_top1": s.best_top1 if s.best_top1 is not None else final["top1"],
        "history": s.history,
        "kind": kind,
        "wall_time_s": trainer.elapsed_s(),
        "warnings": data.warnings
        + diagnostics.report(diagnostics.divergence_warnings(s.history, info.num_classes), ctx.is_main),
    }
    if mode == "hybrid":
        metrics.update(init_top1=init_top1, ann_top1=ann_top1, ann_levels=parent["config"]["levels"])
    return metrics, s.history, trainer.model


def _run_convert(cfg, ctx, info, ann, parent):
    from lmht.convert import qcfs_to_if

    data = build_data(cfg, ctx, train=False)
    ann_top1 = evaluate(ann, data.test, cfg, ctx, desc="ANN").top1
    steps = cfg["convert_steps"]
    snn = qcfs_to_if(ann, steps, encoding=info.encoding, input_shape=tuple(info.input_size)).to(ctx.device)
    curve = evaluate(snn, data.test, cfg, ctx, desc=f"T={steps}").top1_per_step
    snn.T = cfg["T"]
    at_t = evaluate(snn, data.test, cfg, ctx, measure=True, desc=f"T={cfg['T']}")
    metrics = {
        **_eval_summary(at_t),
        "top1": curve[cfg["T"] - 1],
        "top1_per_step": curve,
        "top1_at": {str(t + 1): acc for t, acc in enumerate(curve)},
        "best_top1": max(curve),
        "history": [],
        "ann_top1": ann_top1,
        "ann_levels": parent["config"]["levels"],
        "kind": "snn",
        "warnings": data.warnings,
    }
    return metrics, [], snn


def _run_reparam(cfg, ctx, info, snn, parent):
    from lmht.convert import reparameterize

    data = build_data(cfg, ctx, train=False)
    before = evaluate(snn, data.test, cfg, ctx, measure=True, keep_predictions=True, desc="LM-HT")
    try:
        single = reparameterize(snn).to(ctx.device)
    except ValueError as exc:
        raise RunError(f"{cfg['snn_checkpoint']}: cannot reparameterize this network: {exc}") from exc
    after = evaluate(single, data.test, cfg, ctx, measure=True, keep_predictions=True, desc="single")
    same, n = _all_reduce(
        [float((before.predictions == after.predictions).sum()), float(len(after.predictions))], ctx
    )
    reparam = {
        "before": _eval_summary(before),
        "after": _eval_summary(after),
        "agreement": 100.0 * same / n,
        "delta_top1": after.top1 - before.top1,
        "T_after": cfg["T"] * cfg["L"],
    }
    metrics = {
        **_eval_summary(after),
        "best_top1": after.top1,
        "history": [],
        "reparam": reparam,
        "kind": "snn",
        "source_mode": parent["mode"],
        "warnings": data.warnings,
    }
    return metrics, [], single
