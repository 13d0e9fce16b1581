"""Run diagnostics: inputs that would train uselessly, and runs that diverged while staying finite.

Both return plain lists of one-line messages; the engine prints them to stderr and stores them in
``metrics.json`` under ``warnings`` (aggregation can show them beside the cell). A NaN/Inf loss or
weight is not handled here: it stops the run (exit 3) and the last finite checkpoint is kept.

* :func:`input_warnings` — before training: a training set that forms no batch (error,
  :class:`InputError`), a training set smaller than one batch (every step sees the same partial batch),
  splits that miss classes (e.g. ``train_subset`` smaller than the number of classes), ``lr = 0``,
  a warm-up as long as the run.
* :func:`divergence_warnings` — after training, from the per-epoch history: a training loss that
  blew up (more than ``loss_factor`` × the initial loss and worse than a uniform guess, ln C), a
  non-finite evaluation loss, and test accuracy still at chance (``<= chance_factor`` × 100/C %)
  after ``min_epochs`` epochs.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DivergenceCriteria",
    "InputError",
    "check_inputs",
    "divergence_warnings",
    "input_warnings",
    "report",
]

PREFIX_DIVERGED = "diverged"
PREFIX_INPUT = "input"


class InputError(ValueError):
    """Inputs with which training cannot run at all (e.g. no batch can be formed). CLI exit code 2."""


@dataclass(frozen=True)
class DivergenceCriteria:
    """Thresholds of :func:`divergence_warnings`.

    Attributes:
        loss_factor: a training loss above ``loss_factor`` × the initial loss (and above ln C) diverged.
        chance_factor: test accuracy at most ``chance_factor`` × chance (100/C %) is "at chance".
        min_epochs: the accuracy criterion applies from this many finished epochs on.
    """

    loss_factor: float = 10.0
    chance_factor: float = 1.5
    min_epochs: int = 2


def _classes(targets: Iterable[int]) -> int:
    return len(set(targets))


def input_warnings(
    *,
    num_classes: int,
    train_size: int | None,
    train_targets: Sequence[int] | None,
    test_targets: Sequence[int] | None,
    batch_size: int,
    epochs: int,
    lr: float,
    warmup_epochs: int,
    even_batches: bool = False,
) -> list[str]:
    """Warnings about inputs that train uselessly (pure function; see the module docstring).

    Args:
        num_classes: classes of the dataset.
        train_size: samples in the training set (None when the run does not train).
        train_targets: its labels (None when unknown: the class check is skipped).
        test_targets: labels of the test set (None when unknown).
        batch_size: training batch size per process.
        epochs, lr, warmup_epochs: the schedule.
        even_batches: batches must have an even size (Mixup/CutMix pair samples).
    Raises:
        InputError: the training set forms no usable batch.
    """
    out: list[str] = []
    if train_size is not None and epochs > 0:
        n = train_size
        if n == 0:
            raise InputError("the training set is empty: no batch can be formed")
        if n < batch_size:
            if even_batches and n % 2:
                raise InputError(
                    f"the training set ({n} samples) is smaller than batch_size={batch_size}, and "
                    f"Mixup/CutMix need an even batch: the only batch would hold {n} samples"
                )
            out.append(
                f"{PREFIX_INPUT}: batch_size={batch_size} is larger than the training set ({n} samples): "
                f"each epoch is one step on the same partial batch of {n}"
            )
        covered = _classes(train_targets) if train_targets is not None else num_classes
        if covered < num_classes:
            out.append(
                f"{PREFIX_INPUT}: the training set ({n} samples) holds only {covered} of the {num_classes} "
                "classes (train_subset smaller than the number of classes?): the others cannot be learned"
            )
        if lr == 0:
            out.append(f"{PREFIX_INPUT}: lr=0: training for {epochs} epoch(s) does not change the weights")
        if 0 < epochs <= warmup_epochs:
            out.append(
                f"{PREFIX_INPUT}: warmup_epochs={warmup_epochs} >= epochs={epochs}: the whole run is the "
                "linear warm-up and the learning-rate schedule never reaches its peak"
            )
    if test_targets is not None:
        covered = _classes(test_targets)
        if covered < num_classes:
            out.append(
                f"{PREFIX_INPUT}: the test set ({len(test_targets)} samples) holds only {covered} of the "
                f"{num_classes} classes (test_subset smaller than the number of classes?)"
            )
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def divergence_warnings(
    history: Sequence[Mapping[str, Any]],
    num_classes: int,
    criteria: DivergenceCriteria = DivergenceCriteria(),
) -> list[str]:
    """Warnings for a training run that diverged without a NaN (pure function).

    Args:
        history: per-epoch rows with ``epoch``, ``train_loss``, ``test_loss``, ``test_acc`` (percent),
            in order (the engine's ``metrics.json`` ``history``).
        num_classes: C; chance accuracy is 100/C %, a uniform guess has cross-entropy ln C.
        criteria: thresholds (:class:`DivergenceCriteria`).
    Returns:
        Messages starting with ``"diverged: "`` (empty for a healthy run or an empty history).
    """
    out: list[str] = []
    if not history or num_classes < 2:
        return out
    uniform = math.log(num_classes)
    first = history[0].get("train_loss")
    if _finite(first):
        reference = min(first, uniform)
        for row in history[1:]:
            loss = row.get("train_loss")
            if _finite(loss) and loss > criteria.loss_factor * reference and loss > uniform:
                out.append(
                    f"{PREFIX_DIVERGED}: training loss {loss:.4g} at epoch {row.get('epoch')} is more than "
                    f"{criteria.loss_factor:g}x the initial {reference:.4g} and above ln({num_classes}) = "
                    f"{uniform:.3f} (a uniform guess)"
                )
                break
    for row in history:
        loss = row.get("test_loss")
        if loss is not None and not _finite(loss):
            out.append(f"{PREFIX_DIVERGED}: test loss is {loss} at epoch {row.get('epoch')}")
            break
    chance = 100.0 / num_classes
    last = history[-1]
    acc = last.get("test_acc")
    if len(history) >= criteria.min_epochs and _finite(acc) and acc <= criteria.chance_factor * chance:
        out.append(
            f"{PREFIX_DIVERGED}: test accuracy {acc:.2f}% after {len(history)} epochs is at chance level "
            f"({chance:.2f}% for {num_classes} classes)"
        )
    return out


def check_inputs(cfg: Mapping[str, Any], num_classes: int, train_set: Any | None, test_set: Any) -> list[str]:
    """:func:`input_warnings` for a run configuration and its datasets (their ``targets`` lists)."""
    return input_warnings(
        num_classes=num_classes,
        train_size=len(train_set) if train_set is not None else None,
        train_targets=getattr(train_set, "targets", None) if train_set is not None else None,
        test_targets=getattr(test_set, "targets", None),
        batch_size=cfg["batch_size"],
        epochs=cfg["epochs"],
        lr=cfg["lr"],
        warmup_epochs=cfg["warmup_epochs"],
        even_batches=cfg["mixup"] > 0 or cfg["cutmix"] > 0,
    )


def report(warnings: Iterable[str], enabled: bool = True) -> list[str]:
    """Print each warning to stderr as one line ``lmht: warning: ...``; return them as a list."""
    warnings = list(warnings)
    if enabled:
        for message in warnings:
            print(f"lmht: warning: {message}", file=sys.stderr, flush=True)
    return warnings
