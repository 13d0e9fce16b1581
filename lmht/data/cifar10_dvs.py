"""CIFAR10-DVS (Li et al. 2017): 10 000 event streams (1 000 per class) from a 128×128 DVS camera.

Accepted layouts under ``root`` (the first one found is used; the SpikingJelly layouts):

* ``root/events_np/<class>/*.npz`` — events already converted by SpikingJelly (keys t, x, y, p);
* ``root/extract/<class>/*.aedat`` or ``root/<class>/*.aedat`` — the original AEDAT 2.0 recordings
  (as unzipped from the ten ``<class>.zip`` archives), or ``root/<class>/*.npz`` event files.

Classes (label order): airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck.

Event -> frame integration (this project's method, the common one of LM-HT / TET / SpikingJelly's
``split_by='number'``): the N events of a stream, in time order, are cut into F slices of equal event
count (slice i holds events [i·⌊N/F⌋, (i+1)·⌊N/F⌋), the last slice also takes the remainder); each
slice is histogrammed per polarity into a [2, 128, 128] count image (channel 0: p = 0, channel 1:
p = 1; x is the column, y the row); the [F, 2, 128, 128] counts are then resized to 48×48 by area
interpolation (average over each output pixel's footprint, ``F.interpolate(mode="area")``). Frames
are cached as ``<cache>/<class>/<stem>.npz`` (key ``frames``, float32 [F, 2, 48, 48]); the cache
defaults to ``root/frames_lmht_F{F}_{size}``.

Split: a fixed, seeded, class-stratified 9:1 train/test split (per class, files sorted by name,
shuffled with ``numpy.random.default_rng(seed)``, the first 10 % go to test). It is written to
``root/split_seed{seed}.json`` the first time and read back afterwards, so every run uses the same
split. Samples are ``(x, label)`` with ``x`` float [F, 2, 48, 48] (event counts, not normalized);
training augmentation: the same random crop (pad 4) and horizontal flip for all frames.

AEDAT 2.0 decoding (jAER DVS128 format, as SpikingJelly reads CIFAR10-DVS): header lines starting
with ``#``, then big-endian uint32 pairs (address, timestamp µs); ``x_raw = (addr & 0xFE) >> 1``,
``y_raw = (addr & 0x7F00) >> 8``, ``p_raw = addr & 1``; stored as ``x = 127 - y_raw``,
``y = 127 - x_raw``, ``p = 1 - p_raw``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .errors import DatasetNotFoundError
from .registry import DatasetInfo, register_dataset
from .transforms import TransformConfig, frame_transform

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SENSOR = 128
TEST_FRACTION = 0.1
INFO = DatasetInfo(
    name="cifar10_dvs", num_classes=10, in_chans=2, image_size=48, encoding="frames", frames=10
)
LAYOUT = (
    "root/events_np/<class>/*.npz (SpikingJelly events), root/extract/<class>/*.aedat or "
    f"root/<class>/*.aedat|npz for the classes {', '.join(CLASSES)}"
)


def read_aedat(path: Path | str) -> dict[str, np.ndarray]:
    """Events of a CIFAR10-DVS AEDAT 2.0 file: dict of int64 arrays t, x, y, p (decoding in module doc)."""
    raw = Path(path).read_bytes()
    start = 0
    while start < len(raw) and raw[start : start + 1] == b"#":
        end = raw.find(b"\n", start)
        start = len(raw) if end < 0 else end + 1
    body = raw[start:]
    if len(body) % 8:
        raise ValueError(
            f"{path}: event data of {len(body)} bytes is not a multiple of 8 (address, timestamp)"
        )
    words = np.frombuffer(body, dtype=">u4").astype(np.int64)
    addr, t = words[0::2], words[1::2]
    x_raw, y_raw, p_raw = (addr & 0xFE) >> 1, (addr & 0x7F00) >> 8, addr & 1
    return {"t": t, "x": 127 - y_raw, "y": 127 - x_raw, "p": 1 - p_raw}


def read_events(path: Path) -> dict[str, np.ndarray]:
    """Events from an ``.aedat`` or an ``.npz`` (keys t, x, y, p) file."""
    if path.suffix == ".aedat":
        return read_aedat(path)
    with np.load(path) as data:
        missing = {"t", "x", "y", "p"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: event file lacks keys {sorted(missing)}")
        return {k: data[k].astype(np.int64) for k in ("t", "x", "y", "p")}


def events_to_frames(
    events: dict[str, np.ndarray], frames: int, size: int = 48, sensor: int = SENSOR
) -> torch.Tensor:
    """Integrate events into [frames, 2, size, size] float32 frames (equal-count slices, area resize).

    Events are ordered by timestamp first (a stable sort keeps same-time events in file order).
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    order = np.argsort(events["t"], kind="stable")
    x, y, p = (np.asarray(events[k])[order] for k in ("x", "y", "p"))
    if len(x) and (x.min() < 0 or y.min() < 0 or x.max() >= sensor or y.max() >= sensor):
        raise ValueError(f"event coordinates outside the {sensor}×{sensor} sensor")
    n = len(x)
    per = n // frames
    slice_of = np.minimum(np.arange(n) // per, frames - 1) if per else np.full(n, frames - 1)
    flat = ((slice_of * 2 + (p > 0)) * sensor + y) * sensor + x
    counts = np.bincount(flat, minlength=frames * 2 * sensor * sensor).astype(np.float32)
    full = torch.from_numpy(counts).view(frames, 2, sensor, sensor)
    if size == sensor:
        return full
    return F.interpolate(full, size=(size, size), mode="area")


def find_event_files(root: Path) -> dict[str, list[Path]]:
    """{class: sorted event files} from the first matching layout; DatasetNotFoundError if none."""
    for base, pattern in (
        (root / "events_np", "*.npz"),
        (root / "extract", "*.aedat"),
        (root, "*.aedat"),
        (root, "*.npz"),
    ):
        files = {c: sorted((base / c).glob(pattern)) for c in CLASSES}
        if all(files.values()):
            return files
    raise DatasetNotFoundError("CIFAR10-DVS", root, LAYOUT)


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_or_make_split(root: Path, files: dict[str, list[Path]], seed: int) -> dict[str, list[str]]:
    """The 9:1 split of ``root/split_seed{seed}.json`` ({"train": [...], "test": [...]}, paths
    relative to ``root``), created (stratified, seeded) the first time."""
    split_file = root / f"split_seed{seed}.json"
    if split_file.is_file():
        split = json.loads(split_file.read_text())
        if set(split) < {"train", "test"}:
            raise ValueError(f"{split_file} must hold 'train' and 'test' lists")
        return split
    rng = np.random.default_rng(seed)
    split = {"seed": seed, "test_fraction": TEST_FRACTION, "train": [], "test": []}
    for c in CLASSES:
        names = [str(p.relative_to(root)) for p in files[c]]
        perm = rng.permutation(len(names))
        n_test = round(TEST_FRACTION * len(names))
        split["test"] += sorted(names[i] for i in perm[:n_test])
        split["train"] += sorted(names[i] for i in perm[n_test:])

    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(split, indent=1) + "\n")

    _atomic_write(split_file, write)
    return split


class CIFAR10DVS(Dataset):
    """CIFAR10-DVS split of frame stacks [F, 2, size, size] (integration, cache and split: module doc).

    Args:
        root: dataset root (one of the layouts of the module docstring).
        train: 90 % training part or 10 % test part of the seeded split.
        frames: F, frames per sample.
        size: output height = width.
        seed: split seed (``root/split_seed{seed}.json``).
        cache_dir: where frames are cached (default ``root/frames_lmht_F{F}_{size}``).
        transform: applied to the [F, 2, size, size] tensor (e.g. :func:`frame_transform`).
    """

    def __init__(
        self,
        root: Path,
        train: bool,
        frames: int = 10,
        size: int = 48,
        seed: int = 0,
        cache_dir: Path | None = None,
        transform=None,
    ) -> None:
        if frames < 1 or size < 1:
            raise ValueError(f"frames and size must be >= 1, got frames={frames}, size={size}")
        self.root, self.frames, self.size, self.transform = root, frames, size, transform
        self.cache_dir = cache_dir or root / f"frames_lmht_F{frames}_{size}"
        split = load_or_make_split(root, find_event_files(root), seed)
        self.files = [root / rel for rel in split["train" if train else "test"]]
        index = {c: i for i, c in enumerate(CLASSES)}
        self.targets = [index[p.parent.name] for p in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def load_frames(self, index: int) -> torch.Tensor:
        """Cached (or freshly integrated and cached) frames [F, 2, size, size] of sample ``index``."""
        path = self.files[index]
        cached = self.cache_dir / path.parent.name / f"{path.stem}.npz"
        if cached.is_file():
            with np.load(cached) as data:
                return torch.from_numpy(data["frames"])
        frames = events_to_frames(read_events(path), self.frames, self.size)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, frames=frames.numpy())

        _atomic_write(cached, write)
        return frames

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.load_frames(index)
        return (self.transform(x) if self.transform else x), self.targets[index]


def dvs_info(frames: int = 10, **_: object) -> DatasetInfo:
    """Info for ``frames`` frames per sample (other options do not change it)."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    return replace(INFO, frames=frames)


@register_dataset(INFO, info_for=dvs_info)
def build_cifar10_dvs(
    root: Path | None,
    train: bool,
    tcfg: TransformConfig,
    seed: int,
    frames: int = 10,
    cache_dir: str | Path | None = None,
) -> CIFAR10DVS:
    """CIFAR10-DVS frames [F, 2, 48, 48] with the seeded 9:1 split."""
    dvs_info(frames)
    if root is None or not root.is_dir():
        raise DatasetNotFoundError("CIFAR10-DVS", root, LAYOUT)
    transform = frame_transform(tcfg, train, size=INFO.image_size)
    cache = Path(cache_dir) if cache_dir is not None else None
    return CIFAR10DVS(root, train, frames, INFO.image_size, seed, cache, transform)
