"""Process context of a run: device and DDP, seeds and RNG states, versions, logging, the run errors."""

from __future__ import annotations

import functools
import os
import platform
import random
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

import lmht
from lmht import checkpoint as ckpt_io

__all__ = [
    "Context",
    "NonFiniteLossError",
    "RunError",
    "all_reduce",
    "device_description",
    "get_rng_state",
    "log",
    "progress",
    "seed_everything",
    "set_rng_state",
    "setup_context",
    "versions",
]


class RunError(RuntimeError):
    """A run that cannot proceed (message says why and what to do). CLI exit code 2."""


class NonFiniteLossError(RunError):
    """The training loss became NaN or infinite. CLI exit code 3."""


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


def log(ctx: Context, msg: str) -> None:
    """Print on the main process only."""
    if ctx.is_main:
        print(msg, flush=True)


def progress(iterable, cfg: Mapping[str, Any], ctx: Context, desc: str, total: int | None = None):
    """A tqdm bar over ``iterable`` on the main process when ``progress`` is on and stderr is a terminal."""
    enabled = cfg["progress"] and ctx.is_main and sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


def all_reduce(values: list[float], ctx: Context) -> list[float]:
    """Sum ``values`` over the processes of a DDP run (identity otherwise)."""
    if not ctx.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()
