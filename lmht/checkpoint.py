"""Atomic, verified checkpoints and atomic output files.

Every file a run writes goes to a temporary file in the same folder and is moved into place with
``os.replace``, so a run killed at any point leaves either the old or the new file, never half of one.

A checkpoint ``checkpoint.pt`` (a plain ``torch.save`` dict) has a sidecar ``checkpoint.pt.sha256``
(JSON) listing the SHA-256 digests it may have. The sidecar is replaced *before* the checkpoint and
lists both the new and the previous digest, so every kill point leaves a pair that verifies. A file
whose digest is not listed, that ``torch.load`` cannot read, or that lacks the expected keys is reported
with :class:`CheckpointError` naming the file; it is never loaded silently. Checkpoints without a
sidecar (e.g. copied from elsewhere) are checked by loading and by their structure.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_checkpoint",
    "save_checkpoint",
    "sha256_file",
]

CHECKPOINT_FORMAT = "lmht-checkpoint-v1"
_REQUIRED = ("format", "mode", "config", "model", "epoch")
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, corrupt or of the wrong kind. Names the file."""


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON with sorted keys off, indent 2, non-finite floats written as null."""
    atomic_write_text(path, json.dumps(_finite(obj), indent=2, allow_nan=False) + "\n")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sidecar(path: str) -> str:
    return f"{path}.sha256"


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> str:
    """Save ``state`` (must hold the keys of a run checkpoint) atomically with its digest sidecar.

    Returns the SHA-256 of the written file.
    """
    path = os.fspath(path)
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks keys {missing}")
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    accepted = [digest]
    if os.path.exists(path):
        # keep the file now in place valid until the new one replaces it
        current = sha256_file(path)
        if current != digest:
            accepted.append(current)
    atomic_write_json(_sidecar(path), {"file": os.path.basename(path), "sha256": accepted})
    atomic_write_bytes(path, data)
    atomic_write_json(_sidecar(path), {"file": os.path.basename(path), "sha256": [digest]})
    return digest


def _read_sidecar(path: str) -> list[str] | None:
    side = _sidecar(path)
    if not os.path.exists(side):
        return None
    try:
        with open(side, encoding="utf-8") as fh:
            data = json.load(fh)
        digests = data["sha256"]
        if isinstance(digests, str):
            digests = [digests]
        return [str(d) for d in digests]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{side}: unreadable checkpoint digest file ({exc})") from exc


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    modes: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Load and verify a run checkpoint.

    Args:
        path: the ``checkpoint.pt`` file.
        map_location: passed to ``torch.load``.
        modes: if given, the run modes this checkpoint may come from (e.g. ``("ann",)``).
    Raises:
        CheckpointError: missing file, digest mismatch, unreadable/truncated file, wrong structure or mode.
    """
    path = os.fspath(path)
    hint = "delete it or rerun with --restart (resume=false) to start over"
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    digests = _read_sidecar(path)
    if digests is not None:
        actual = sha256_file(path)
        if actual not in digests:
            raise CheckpointError(
                f"{path}: checkpoint is corrupt or truncated (SHA-256 {actual[:12]}… does not match "
                f"{_sidecar(path)}); {hint}"
            )
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises RuntimeError/EOFError/UnpicklingError/... on damage
        raise CheckpointError(
            f"{path}: checkpoint cannot be read ({type(exc).__name__}: {exc}); {hint}"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an lmht run checkpoint (format {CHECKPOINT_FORMAT} expected)")
    missing = [k for k in _REQUIRED if k not in state]
    if missing or not isinstance(state["model"], Mapping):
        raise CheckpointError(f"{path}: checkpoint structure is incomplete (missing {missing or ['model']})")
    if modes is not None and state["mode"] not in tuple(modes):
        raise CheckpointError(
            f"{path}: checkpoint of a '{state['mode']}' run; expected one of {', '.join(modes)}"
        )
    return state
