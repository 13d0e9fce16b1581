"""Datasets and loaders of a run (``lmht.data``), seeded so that resume and DDP give the same order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from lmht import diagnostics
from lmht.build import dataset_options

from .context import Context, RunError

__all__ = ["Data", "build_data"]


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
