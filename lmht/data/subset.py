"""Fixed, seeded, class-stratified subsets (``train_subset`` / ``test_subset`` in the config)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset


def dataset_targets(dataset: Dataset) -> list[int]:
    """Labels of every sample, from the dataset's ``targets`` attribute (torchvision convention)."""
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise ValueError(f"{type(dataset).__name__} has no `targets` attribute: cannot stratify a subset")
    return [int(t) for t in targets]


def stratified_subset(dataset: Dataset, size: int, seed: int = 0) -> Subset:
    """Keep ``size`` samples, as balanced over classes as possible, chosen by ``seed``.

    Method: shuffle the indices of each class with ``torch.Generator().manual_seed(seed)``, then take
    them round-robin over the classes (class 0's first, class 1's first, ..., class 0's second, ...)
    until ``size`` are taken; the kept indices are returned in dataset order. The same (dataset, size,
    seed) always gives the same subset, and a smaller size gives a subset of a larger one.

    Returns:
        ``torch.utils.data.Subset`` with a ``targets`` list. ``size >= len(dataset)`` keeps everything.
    """
    if size < 0:
        raise ValueError(f"subset size must be >= 0, got {size}")
    targets = dataset_targets(dataset)
    n = len(targets)
    if size >= n:
        indices = list(range(n))
    else:
        gen = torch.Generator().manual_seed(seed)
        by_class: dict[int, list[int]] = {}
        for i, t in enumerate(targets):
            by_class.setdefault(t, []).append(i)
        queues = []
        for c in sorted(by_class):
            perm = torch.randperm(len(by_class[c]), generator=gen).tolist()
            queues.append([by_class[c][j] for j in perm])
        order = [q[k] for k in range(max(map(len, queues))) for q in queues if k < len(q)]
        indices = sorted(order[:size])
    sub = Subset(dataset, indices)
    sub.targets = [targets[i] for i in indices]
    return sub
