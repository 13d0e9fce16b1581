"""Dataset registry: ``create_dataset(name, root, train, ...)`` and ``dataset_info(name)``.

Each dataset module registers a builder with :func:`register_dataset`; nothing here branches on
dataset names. A builder has the signature ``build(root, train, tcfg, seed, **options)`` and returns a
``torch.utils.data.Dataset`` of ``(x, label)`` pairs with a ``targets`` list of labels.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from .subset import stratified_subset
from .transforms import TransformConfig


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset that models and the engine need.

    Attributes:
        name: registry key.
        num_classes: number of labels.
        in_chans: channels per image (2 polarities for event frames).
        image_size: height = width of one (augmented, resized) sample.
        encoding: ``"direct"`` (static image, [C, H, W]) or ``"frames"`` (events, [F, C, H, W]).
        mean, std: per-channel normalization (empty for unnormalized frames).
        frames: F for ``"frames"`` datasets, else None.
        default_augment: whether training augmentation is on by default.
        autoaugment_policy: AutoAugment policy name, None if unsupported.
        paper_name: the name tables print (the paper's, e.g. "ImageNet-200" for Tiny-ImageNet).
        needs_files: whether the dataset is read from files on disk (False for synthetic data).
    """

    name: str
    num_classes: int
    in_chans: int
    image_size: int
    encoding: str = "direct"
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    frames: int | None = None
    default_augment: bool = True
    autoaugment_policy: str | None = None
    paper_name: str = ""
    needs_files: bool = True

    @property
    def input_size(self) -> tuple[int, ...]:
        """Shape of one sample: (C, H, W), or (F, C, H, W) for frames."""
        chw = (self.in_chans, self.image_size, self.image_size)
        return (self.frames, *chw) if self.encoding == "frames" else chw


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its default info, builder, and how options change the info."""

    info: DatasetInfo
    build: Callable[..., Dataset]
    info_for: Callable[..., DatasetInfo] | None = field(default=None)


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(
    info: DatasetInfo, info_for: Callable[..., DatasetInfo] | None = None
) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Decorator registering ``build`` under ``info.name``.

    ``info_for(**options)`` returns the info for builder options that change it (e.g. the synthetic
    dataset's ``num_classes``); without it the info is the same for every option.
    """

    def deco(build: Callable[..., Dataset]) -> Callable[..., Dataset]:
        _DATASETS[info.name] = DatasetSpec(info, build, info_for)
        return build

    return deco


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_DATASETS)


def _spec(name: str) -> DatasetSpec:
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    return _DATASETS[name]


def _check_options(name: str, build: Callable[..., Dataset], options: dict[str, Any]) -> None:
    params = inspect.signature(build).parameters
    allowed = [p for p in params if p not in ("root", "train", "tcfg", "seed")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"dataset {name!r} does not accept option(s) {unknown}; accepted: {allowed}")


def dataset_info(name: str, **options: Any) -> DatasetInfo:
    """Info of dataset ``name`` (options matter only for datasets whose shape they set, e.g. synthetic)."""
    spec = _spec(name)
    _check_options(name, spec.build, options)
    return spec.info_for(**options) if spec.info_for else spec.info


def create_dataset(
    name: str,
    root: str | Path | None = None,
    train: bool = True,
    *,
    augment: bool | None = None,
    autoaugment: bool = False,
    cutout: int = 0,
    normalize: bool = True,
    subset: int | None = None,
    seed: int = 0,
    **options: Any,
) -> Dataset:
    """Create a dataset split by name.

    Args:
        name: a key of :func:`list_datasets` (fashion_mnist, cifar10, cifar100, imagenet200, imagenet,
            cifar10_dvs, synthetic).
        root: data root (its expected layout is in each dataset module; ignored by synthetic).
        train: training split (augmented) or test split.
        augment, autoaugment, cutout, normalize: training-time transforms, see
            :class:`lmht.data.transforms.TransformConfig`; ``augment=None`` uses the dataset default.
        subset: keep only this many samples, a seeded class-stratified choice
            (:func:`lmht.data.subset.stratified_subset`); None or 0 keeps all.
        seed: the *data* seed: synthetic samples, the subset choice and the CIFAR10-DVS split. Keep it
            fixed across training seeds to compare runs on the same data.
        **options: dataset-specific options (e.g. ``frames`` for cifar10_dvs, ``num_classes`` for
            synthetic, ``download`` for fashion_mnist / cifar).

    Returns:
        A Dataset of ``(x, label)`` with attributes ``info`` (:class:`DatasetInfo`) and ``targets``.

    Raises:
        ValueError: unknown name or option, bad argument.
        DatasetNotFoundError (a FileNotFoundError): files missing; the message names the path and layout.
    """
    spec = _spec(name)
    _check_options(name, spec.build, options)
    info = spec.info_for(**options) if spec.info_for else spec.info
    tcfg = TransformConfig(
        augment=info.default_augment if augment is None else augment,
        autoaugment=autoaugment,
        cutout=cutout,
        normalize=normalize,
    )
    root_path = Path(root).expanduser() if root is not None else None
    dataset = spec.build(root=root_path, train=train, tcfg=tcfg, seed=seed, **options)
    if subset:
        dataset = stratified_subset(dataset, subset, seed)
    dataset.info = replace(info)
    return dataset
