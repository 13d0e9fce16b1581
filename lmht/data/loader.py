"""Deterministic data loading: seeded shuffling, per-sample augmentation seeds, optional DDP sampler.

Reproducibility model (style rule 4: seeds cover data order and augmentation):

* **Order.** Training shuffles with :class:`EpochShuffleSampler`: the permutation of epoch ``e`` is
  ``torch.randperm(n, generator=torch.Generator().manual_seed(seed + e))`` — a function of
  (seed, epoch) only, so a resumed run sees the same order. Under ``torch.distributed``,
  ``DistributedSampler(shuffle=True, seed=seed)`` is used instead (same property).
* **Augmentation.** The training dataset is wrapped in :class:`SeededSamples`, which runs each
  ``dataset[i]`` under a forked torch RNG seeded with (seed, epoch, i). Random transforms therefore
  give the same result for a sample whatever the worker count, and they never disturb the training
  process's own RNG.
* **Workers.** The DataLoader gets ``generator=torch.Generator().manual_seed(seed)`` and
  :func:`seed_worker` seeds NumPy and ``random`` in each worker from its torch seed.

Call :func:`set_epoch` (``set_epoch(loader, epoch)``) before iterating each epoch: it updates the
sampler and the per-sample seeds. Workers are not persistent, so the new epoch reaches them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

_MIX = 0x9E3779B97F4A7C15  # 64-bit golden-ratio constant for mixing (seed, epoch, index)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that differs for every (seed, epoch, index) triple."""
    h = (seed * _MIX + epoch) * _MIX + index
    return (h ^ (h >> 29)) & 0x7FFF_FFFF_FFFF_FFFF


class SeededSamples(Dataset):
    """Wrap a dataset so ``self[i]`` runs ``dataset[i]`` with torch's RNG seeded by (seed, epoch, i).

    The CPU generator's state of the calling process is restored afterwards (saving and seeding
    ``torch.default_generator`` directly costs ~2 µs, ``torch.random.fork_rng`` + ``torch.manual_seed``
    ~90 µs per sample).
    Attributes ``targets`` and ``info`` of the wrapped dataset are forwarded.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        gen = torch.default_generator  # the CPU generator torchvision transforms draw from
        state = gen.get_state()
        gen.manual_seed(sample_seed(self.seed, self.epoch, index))
        try:
            return self.dataset[index]
        finally:
            gen.set_state(state)

    def __getattr__(self, name: str):
        if name in ("targets", "info"):
            return getattr(self.dataset, name)
        raise AttributeError(name)


class EpochShuffleSampler(Sampler[int]):
    """Random permutation of ``range(n)`` that depends only on (seed, epoch); see the module docstring."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=gen).tolist())


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and ``random`` from the worker's torch seed."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)  # noqa: NPY002  (legacy global RNG, as used by timm Mixup and old transforms)
    random.seed(s)


def create_loader(
    dataset: Dataset,
    batch_size: int,
    train: bool,
    seed: int = 0,
    workers: int = 0,
    *,
    drop_last: bool | None = None,
    distributed: bool | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader with the reproducibility guarantees of the module docstring.

    Args:
        dataset: the split (from :func:`lmht.data.create_dataset`).
        batch_size: samples per batch (per process under DDP).
        train: shuffle + per-sample augmentation seeds (True) or sequential order (False).
        seed: shuffling and augmentation seed (the training seed).
        workers: DataLoader worker processes (0: load in the main process).
        drop_last: drop the last incomplete batch (default: True for training, needed by Mixup).
        distributed: use a ``DistributedSampler`` (default: when ``torch.distributed`` is initialized,
            for training; evaluation stays sequential unless True is passed).
        pin_memory: pin host memory (for CUDA).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if drop_last is None:
        drop_last = train and len(dataset) >= batch_size
    if distributed is None:
        distributed = train and dist.is_available() and dist.is_initialized()
    if train:
        dataset = SeededSamples(dataset, seed)
    sampler: Sampler[int] | None
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=train, seed=seed, drop_last=drop_last)
    elif train:
        sampler = EpochShuffleSampler(len(dataset), seed)
    else:
        sampler = None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the loader's sampler and per-sample seeding which epoch comes next."""
    for obj in (loader.sampler, loader.dataset):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
