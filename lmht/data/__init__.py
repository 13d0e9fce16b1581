"""Datasets, transforms and deterministic loaders for the LM-HT suite.

``create_dataset(name, root, train, ...)`` builds a split by registry name (fashion_mnist, cifar10,
cifar100, imagenet200, imagenet, cifar10_dvs, synthetic); ``dataset_info(name)`` gives its
:class:`DatasetInfo` (classes, channels, image size, encoding "direct" or "frames", mean/std);
``create_loader`` makes a seeded DataLoader; ``create_mixup`` a timm Mixup/CutMix or None.
Importing this package registers every dataset.
"""

from . import cifar, cifar10_dvs, fashion_mnist, imagenet, synthetic, tiny_imagenet  # noqa: F401  (registers)
from .errors import DataFileError, DatasetNotFoundError
from .loader import EpochShuffleSampler, SeededSamples, create_loader, seed_worker, set_epoch
from .mixup import create_mixup
from .registry import DatasetInfo, create_dataset, dataset_info, list_datasets, register_dataset
from .subset import stratified_subset
from .transforms import Cutout, TransformConfig

__all__ = [
    "Cutout",
    "DataFileError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "EpochShuffleSampler",
    "SeededSamples",
    "TransformConfig",
    "create_dataset",
    "create_loader",
    "create_mixup",
    "dataset_info",
    "list_datasets",
    "register_dataset",
    "seed_worker",
    "set_epoch",
    "stratified_subset",
]
