"""CIFAR10-DVS (Li et al. 2017): 10 000 event streams (1 000 per class) from a 128×128 DVS camera.

Accepted layouts under ``root`` (the first one found is used; the SpikingJelly layouts):

* ``root/events_np/<class>/*.npz`` — events already converted by SpikingJelly (keys t, x, y, p);
* ``root/extract/<class>/*.aedat`` or ``root/<class>/*.aedat`` — the original AEDAT 2.0 recordings
  (as unzipped from the ten ``<class>.zip`` archives), or ``root/<class>/*.npz`` event files.

Classes (label order): airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck.

Frames, as the authors make them (dataprocess.py ``build_dvscifar``: SpikingJelly's
``CIFAR10DVS(data_type='frame', frames_number=10, split_by='number')``, then torchvision
``Resize((48, 48))`` on the frame tensor):

1. the N events of a stream, in file order, are cut into F slices of equal event count (slice i holds
   events [i·⌊N/F⌋, (i+1)·⌊N/F⌋), the last slice also takes the remainder);
2. each slice is histogrammed per polarity into a [2, 128, 128] count image (channel 0: p = 0,
   channel 1: p = 1; x is the column, y the row);
3. the [F, 2, 128, 128] counts are resized to 48×48 by ``torchvision.transforms.Resize((48, 48))``:
   bilinear, and in torchvision >= 0.17 (this project pins 0.29) **antialiased** by default on
   tensors. Older torchvision resized tensors without antialiasing (the default changed in 0.17;
   the authors do not state their version): ``antialias=False`` reproduces that — a point-sampled
   bilinear resize, which at this 2.67× reduction gives a quarter of the rows and of the columns zero
   weight (the events on 44 % of the pixels vanish) and weights the others by 0.03–0.69, where the
   antialiased resize weights every pixel by 0.08–0.18 (mean (48/128)² = 0.14).

The frames are cached as ``<cache>/F{F}_S{size}_{aa|noaa}/<class>/<stem>.npz`` (key ``frames``,
float32 [F, 2, size, size]). ``<cache>`` is ``cache_dir`` when given, else
``$LMHT_CACHE_DIR/cifar10_dvs/<root id>`` or ``~/.cache/lmht/cifar10_dvs/<root id>`` (``<root id>``:
the first 12 hex digits of the SHA-256 of the resolved root path) — never inside the data root, which
may be read-only. A cached file that cannot be read is rebuilt (with a warning).

Split (the authors' ``DatasetSplitter``): per class, the files in sorted (lexicographic) name order;
the first 90 % are the training set and the last 10 % the test set (``n // 10`` files, at least one).
Deterministic, no split file, independent of any seed.

Samples are ``(x, label)`` with ``x`` float [F, 2, 48, 48] (event counts, resized; not normalized).
Training augmentation: :class:`lmht.data.transforms.DVSAugment` (the authors'; ``augment_policy="nda"``)
or our earlier random crop + flip (``"crop_flip"``).

AEDAT 2.0 decoding (jAER DVS128 format, as SpikingJelly reads CIFAR10-DVS): a first line starting with
``#!AER-DAT``, further header lines starting with ``#``, then big-endian uint32 pairs (address,
timestamp µs); ``x_raw = (addr & 0xFE) >> 1``, ``y_raw = (addr & 0x7F00) >> 8``, ``p_raw = addr & 1``;
stored as ``x = 127 - y_raw``, ``y = 127 - x_raw``, ``p = 1 - p_raw``. A file that is not readable this
way (no header, a truncated event record, no events; an ``.npz`` that is not a zip archive, lacks one
of t/x/y/p, or has coordinates outside the sensor) raises :class:`lmht.data.errors.DataFileError`
naming the file: empty files when the dataset is opened, the rest when the sample is first read.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from .errors import DataFileError, DatasetNotFoundError
from .registry import DatasetInfo, register_dataset
from .transforms import FRAME_POLICIES, TransformConfig, frame_transform

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SENSOR = 128
TEST_FRACTION = 0.1
EVENT_KEYS = ("t", "x", "y", "p")
AEDAT_MAGIC = b"#!AER-DAT"
INFO = DatasetInfo(
    name="cifar10_dvs",
    num_classes=10,
    in_chans=2,
    image_size=48,
    encoding="frames",
    frames=10,
    paper_name="CIFAR10-DVS",
)
LAYOUT = (
    "root/events_np/<class>/*.npz (SpikingJelly events), root/extract/<class>/*.aedat or "
    f"root/<class>/*.aedat|npz for the classes {', '.join(CLASSES)}"
)


def read_aedat(path: Path | str) -> dict[str, np.ndarray]:
    """Events of a CIFAR10-DVS AEDAT 2.0 file: dict of int64 arrays t, x, y, p (decoding in module doc).

    Raises:
        DataFileError: no ``#!AER-DAT`` header, a truncated event record, or no events.
    """
    raw = Path(path).read_bytes()
    if not raw.startswith(AEDAT_MAGIC):
        magic = AEDAT_MAGIC.decode()
        raise DataFileError(path, f"not an AEDAT file: the first line does not start with {magic}")
    start = 0
    while start < len(raw) and raw[start : start + 1] == b"#":
        end = raw.find(b"\n", start)
        start = len(raw) if end < 0 else end + 1
    body = raw[start:]
    if len(body) % 8:
        raise DataFileError(path, f"truncated: {len(body)} bytes of events is not a whole number of "
                            "8-byte (address, timestamp) records")
    if not body:
        raise DataFileError(path, "holds no events")
    words = np.frombuffer(body, dtype=">u4").astype(np.int64)
    addr, t = words[0::2], words[1::2]
    x_raw, y_raw, p_raw = (addr & 0xFE) >> 1, (addr & 0x7F00) >> 8, addr & 1
    return {"t": t, "x": 127 - y_raw, "y": 127 - x_raw, "p": 1 - p_raw}


def read_npz_events(path: Path | str) -> dict[str, np.ndarray]:
    """Events from an ``.npz`` file with keys t, x, y, p (SpikingJelly's ``events_np``).

    Raises:
        DataFileError: not a readable ``.npz``, a key missing, arrays of different lengths, no events,
            coordinates outside the 128×128 sensor or polarities other than 0/1.
    """
    try:
        with np.load(path) as data:
            missing = [k for k in EVENT_KEYS if k not in data.files]
            if missing:
                raise DataFileError(path, f"event file lacks key(s) {missing} (needs {list(EVENT_KEYS)})")
            events = {k: np.asarray(data[k]).astype(np.int64).ravel() for k in EVENT_KEYS}
    except DataFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataFileError(path, f"not a readable .npz archive ({type(err).__name__}: {err})") from err
    lengths = {k: len(v) for k, v in events.items()}
    if len(set(lengths.values())) != 1:
        raise DataFileError(path, f"event arrays of different lengths {lengths}")
    if not lengths["t"]:
        raise DataFileError(path, "holds no events")
    for key in ("x", "y"):
        if events[key].min() < 0 or events[key].max() >= SENSOR:
            raise DataFileError(path, f"{key} coordinates outside the {SENSOR}×{SENSOR} sensor")
    if not np.isin(events["p"], (0, 1)).all():
        raise DataFileError(path, "polarities other than 0 and 1")
    return events


def read_events(path: Path) -> dict[str, np.ndarray]:
    """Events from an ``.aedat`` or an ``.npz`` file (DataFileError when unusable)."""
    return read_aedat(path) if path.suffix == ".aedat" else read_npz_events(path)


def events_to_frames(events: dict[str, np.ndarray], frames: int, sensor: int = SENSOR) -> torch.Tensor:
    """Integrate events, in file order, into ``[frames, 2, sensor, sensor]`` float32 counts.

    Equal-count slices, the last one taking the remainder (SpikingJelly's ``split_by='number'``).
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    x, y, p = (np.asarray(events[k]) for k in ("x", "y", "p"))
    if len(x) and (x.min() < 0 or y.min() < 0 or x.max() >= sensor or y.max() >= sensor):
        raise ValueError(f"event coordinates outside the {sensor}×{sensor} sensor")
    n = len(x)
    per = n // frames
    slice_of = np.minimum(np.arange(n) // per, frames - 1) if per else np.full(n, frames - 1)
    flat = ((slice_of * 2 + (p > 0)) * sensor + y) * sensor + x
    counts = np.bincount(flat, minlength=frames * 2 * sensor * sensor).astype(np.float32)
    return torch.from_numpy(counts).view(frames, 2, sensor, sensor)


def resize_frames(frames: torch.Tensor, size: int, antialias: bool = True) -> torch.Tensor:
    """``[F, C, H, W] -> [F, C, size, size]`` by torchvision's bilinear ``Resize`` (module docstring)."""
    if frames.shape[-1] == size and frames.shape[-2] == size:
        return frames
    return v2.Resize((size, size), antialias=antialias)(frames)


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


def split_files(files: dict[str, list[Path]], train: bool) -> list[Path]:
    """The authors' split: per class the first 90 % of the sorted files (train) or the last 10 % (test).

    The test part has ``n // 10`` files, at least one; ValueError names a class with fewer than 2 files.
    """
    chosen = []
    for c in CLASSES:
        names = sorted(files[c], key=lambda p: p.name)
        if len(names) < 2:
            raise ValueError(f"CIFAR10-DVS class {c!r} has {len(names)} file(s); the 9:1 split needs >= 2")
        n_test = max(len(names) // 10, 1)
        chosen += names[len(names) - n_test :] if not train else names[: len(names) - n_test]
    return chosen


def default_cache_dir(root: Path) -> Path:
    """``$LMHT_CACHE_DIR`` (or ``~/.cache/lmht``) ``/cifar10_dvs/<root id>`` (module docstring)."""
    base = Path(os.environ.get("LMHT_CACHE_DIR") or Path.home() / ".cache" / "lmht")
    root_id = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:12]
    return base.expanduser() / "cifar10_dvs" / root_id


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


class CIFAR10DVS(Dataset):
    """CIFAR10-DVS split of frame stacks [F, 2, size, size] (integration, cache and split: module doc).

    Args:
        root: dataset root (one of the layouts of the module docstring).
        train: the first 90 % of each class (train) or the last 10 % (test).
        frames: F, frames per sample.
        size: output height = width.
        cache_dir: the cache folder (default :func:`default_cache_dir`); one subfolder per
            (frames, size, antialias), so one folder serves several settings.
        transform: applied to the [F, 2, size, size] tensor (e.g. :func:`frame_transform`).
        antialias: the resize's antialiasing (module docstring; True = torchvision 0.29's default).

    Raises:
        DatasetNotFoundError: no layout found under ``root``.
        DataFileError: an empty event file in the split.
    """

    def __init__(
        self,
        root: Path | str,
        train: bool,
        frames: int = 10,
        size: int = 48,
        *,
        cache_dir: Path | str | None = None,
        transform=None,
        antialias: bool = True,
    ) -> None:
        if frames < 1 or size < 1:
            raise ValueError(f"frames and size must be >= 1, got frames={frames}, size={size}")
        root = Path(root)
        self.root, self.frames, self.size, self.transform = root, frames, size, transform
        self.antialias = antialias
        base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(root)
        self.cache_dir = base / f"F{frames}_S{size}_{'aa' if antialias else 'noaa'}"
        self.files = split_files(find_event_files(root), train)
        for path in self.files:
            if path.stat().st_size == 0:
                raise DataFileError(path, "empty file (0 bytes)")
        index = {c: i for i, c in enumerate(CLASSES)}
        self.targets = [index[p.parent.name] for p in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def cache_path(self, index: int) -> Path:
        """Where sample ``index``'s frames are cached."""
        path = self.files[index]
        return self.cache_dir / path.parent.name / f"{path.stem}.npz"

    def _read_cache(self, cached: Path) -> torch.Tensor | None:
        try:
            with np.load(cached) as data:
                frames = torch.from_numpy(np.array(data["frames"], dtype=np.float32))
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            warnings.warn(f"{cached}: unreadable cached frames ({err}); rebuilding them", stacklevel=3)
            return None
        if tuple(frames.shape) != (self.frames, 2, self.size, self.size):
            shape = tuple(frames.shape)
            warnings.warn(f"{cached}: cached frames of shape {shape}; rebuilding them", stacklevel=3)
            return None
        return frames

    def load_frames(self, index: int) -> torch.Tensor:
        """Cached (else integrated, resized and cached) frames [F, 2, size, size] of sample ``index``."""
        cached = self.cache_path(index)
        if cached.is_file():
            frames = self._read_cache(cached)
            if frames is not None:
                return frames
        full = events_to_frames(read_events(self.files[index]), self.frames)
        frames = resize_frames(full, self.size, self.antialias).contiguous()

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
    antialias: bool = True,
    augment_policy: str = "nda",
) -> CIFAR10DVS:
    """CIFAR10-DVS frames [F, 2, 48, 48], the authors' 9:1 split (``seed`` does not change it).

    ``augment_policy``: ``"nda"`` (the authors') or ``"crop_flip"`` (our earlier variant).
    """
    dvs_info(frames)
    if augment_policy not in FRAME_POLICIES:
        raise ValueError(f"augment_policy must be one of {list(FRAME_POLICIES)}, got {augment_policy!r}")
    if root is None or not root.is_dir():
        raise DatasetNotFoundError("CIFAR10-DVS", root, LAYOUT)
    transform = frame_transform(tcfg, train, size=INFO.image_size, policy=augment_policy)
    return CIFAR10DVS(root, train, frames, INFO.image_size, cache_dir=cache_dir, transform=transform,
                      antialias=antialias)
