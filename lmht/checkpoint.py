"""Safe, atomic, verified checkpoints and atomic output files.

Every file a run writes goes to a temporary file in the same folder and is moved into place with
``os.replace``, so a run killed at any point leaves either the old or the new file, never half of one.

A checkpoint ``checkpoint.pt`` is a plain ``torch.save`` dict that holds only tensors and plain Python
values (dict, list, tuple, str, bytes, int, float, bool, None, torch dtype/device/Size), so it is read
with ``torch.load(..., weights_only=True)``: loading never unpickles arbitrary objects, and a file that
would (e.g. a crafted pickle whose ``__reduce__`` runs a shell command) is refused with
:class:`CheckpointError` before anything in it runs. Three checks guard its contents:

* **Digest inside the file.** The payload carries ``integrity = {"scheme", "sha256"}``, the SHA-256 of
  every other field (names, plain values, tensor dtypes, shapes and bytes; :func:`payload_digest`).
  A file whose fields do not match it (flipped bytes in tensor data or in the pickle) is refused, with
  or without the sidecar.
* **Sidecar.** ``checkpoint.pt.sha256`` (JSON) lists the SHA-256 digests the whole file may have. It is
  replaced *before* the checkpoint and lists both the new and the previous digest, so every kill point
  leaves a pair that verifies. A sidecar is optional (a checkpoint copied alone still loads, verified by
  its inner digest); a sidecar that is present must match.
* **Finite values.** :func:`save_checkpoint` never writes a payload with a NaN/Inf in a floating-point
  tensor (parameters, buffers such as BatchNorm ``running_var``, optimizer state): it raises
  :class:`NonFiniteCheckpointError` naming the tensors, and the last finite checkpoint stays in place.

Over 400 lines because every way a checkpoint can be wrong (unsafe pickle, foreign format, flipped
bytes, non-finite tensors, missing keys) is checked here, in one place, before any run uses it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "DIGEST_SCHEME",
    "CheckpointError",
    "NonFiniteCheckpointError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_checkpoint",
    "nonfinite_tensors",
    "numpy_rng_state",
    "payload_digest",
    "save_checkpoint",
    "sha256_file",
]

#: v2: weights-only payload with an inner digest (v1 pickled NumPy RNG states and had no inner digest)
CHECKPOINT_FORMAT = "lmht-checkpoint-v2"
#: how :func:`payload_digest` serializes the fields; bump when that changes
DIGEST_SCHEME = "lmht-fields-sha256-v1"
_REQUIRED = ("format", "mode", "config", "model", "epoch")
_INTEGRITY = "integrity"
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_HINT = "delete it or rerun with --restart (resume=false) to start over"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, corrupt, unsafe or of the wrong kind. Names the file."""


class NonFiniteCheckpointError(CheckpointError):
    """A checkpoint was not written because tensors in it are NaN/Inf (training diverged).

    Attributes:
        path: the checkpoint that was *not* replaced (it still holds the last finite state, if any).
        tensors: ``[(field name, "nan" | "inf" | "nan+inf"), ...]`` of every non-finite tensor.
    """

    def __init__(self, path: str, tensors: list[tuple[str, str]], where: str, kept: str) -> None:
        self.path, self.tensors = path, tensors
        shown = ", ".join(f"{name} ({kind})" for name, kind in tensors[:4])
        more = f" and {len(tensors) - 4} more" if len(tensors) > 4 else ""
        super().__init__(f"non-finite values {where} in {shown}{more}: {path} not written; {kept}")


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


# ------------------------------------------------------------------------------------------ payload
_ATOMS = (str, bytes, bool, int, float, type(None), torch.dtype, torch.device, torch.Size)


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _to_plain(obj: Any, name: str) -> Any:
    """``obj`` with tensors detached on the CPU and NumPy scalars as Python scalars; anything that the
    weights-only unpickler would refuse raises TypeError naming the field."""
    if isinstance(obj, torch.Tensor):
        if obj.layout != torch.strided:
            raise TypeError(f"checkpoint field {name}: {obj.layout} tensors are not supported")
        return obj.detach().cpu()
    if isinstance(obj, bool | type(None) | torch.dtype | torch.device | torch.Size):
        return obj
    if isinstance(obj, str):
        return str(obj)  # also str subclasses such as torch.__version__ (a TorchVersion)
    if isinstance(obj, bytes):
        return bytes(obj)
    if isinstance(obj, float):
        return float(obj)  # also NumPy float64, a float subclass that would pickle as a NumPy object
    if isinstance(obj, int):
        return int(obj)
    if type(obj).__module__ == "numpy" and hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return obj.item()  # NumPy scalar
    if isinstance(obj, dict):
        out = (OrderedDict if isinstance(obj, OrderedDict) else dict)(
            (k, _to_plain(v, _join(name, k))) for k, v in obj.items()
        )
        for k in out:
            if not isinstance(k, str | int):
                raise TypeError(f"checkpoint field {name}: key {k!r} must be a str or an int")
        meta = getattr(obj, "_metadata", None)  # nn.Module.state_dict() version information
        if meta is not None:
            out._metadata = _to_plain(meta, _join(name, "_metadata"))
        return out
    if isinstance(obj, list | tuple):
        items = [_to_plain(v, f"{name}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(
        f"checkpoint field {name or '<root>'}: {type(obj).__module__}.{type(obj).__qualname__} cannot be "
        "stored in a weights-only checkpoint (use tensors or plain Python values)"
    )


def _feed(h: Any, obj: Any) -> None:
    """Serialize ``obj`` into the hash ``h`` unambiguously (type tag, length, content)."""
    if obj is None:
        h.update(b"N")
    elif isinstance(obj, bool):
        h.update(b"B1" if obj else b"B0")
    elif isinstance(obj, int):
        h.update(b"I%d;" % obj)
    elif isinstance(obj, float):
        h.update(b"F" + float.hex(obj).encode() + b";")
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        h.update(b"S%d:" % len(data) + data)
    elif isinstance(obj, bytes):
        h.update(b"Y%d:" % len(obj) + obj)
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, torch.dtype | torch.device | torch.Size):
        text = f"{type(obj).__name__}={obj}".encode()
        h.update(b"X%d:" % len(text) + text)
    elif isinstance(obj, dict):
        h.update(b"D%d{" % len(obj))
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
        meta = getattr(obj, "_metadata", None)
        if meta is not None:
            h.update(b"M")
            _feed(h, meta)
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update((b"L%d[" if isinstance(obj, list) else b"U%d[") % len(obj))
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    else:
        raise TypeError(f"cannot digest a {type(obj).__name__}")


def payload_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of every field of a checkpoint payload except ``integrity``.

    Covers field names and order, plain values (floats bit-exactly) and each tensor's dtype, shape and
    bytes, so any change that survives unpickling changes the digest.
    """
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != _INTEGRITY})
    return h.hexdigest()


def _tensors(obj: Any, name: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield name, obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _tensors(v, _join(name, k))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{name}[{i}]")


def nonfinite_tensors(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(field name, "nan" | "inf" | "nan+inf")]`` of the floating-point tensors holding NaN/Inf.

    Names are dotted paths into the payload, e.g. ``model.features.1.running_var`` or
    ``optimizer.state.3.momentum_buffer``.
    """
    bad = []
    for name, t in _tensors(payload):
        if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
            continue
        if not bool(torch.isnan((t * 0).sum())):  # x·0 is NaN exactly for ±inf and NaN; one pass, no mask
            continue
        kinds = [k for k, f in (("nan", torch.isnan), ("inf", torch.isinf)) if bool(f(t).any())]
        bad.append((name, "+".join(kinds)))
    return bad


def numpy_rng_state() -> tuple[str, list[int], int, int, float]:
    """NumPy's global (legacy) RNG state as plain values: ``("MT19937", [624 ints], pos, has_gauss,
    cached_gaussian)``; ``np.random.set_state`` takes it back as is."""
    name, key, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return str(name), [int(k) for k in key.tolist()], int(pos), int(has_gauss), float(cached)


def _describe_existing(path: str) -> str:
    if not os.path.exists(path):
        return "no earlier checkpoint exists"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        step = f" + {state['step']} step(s)" if state.get("step") else ""
        where = f"after {state['epoch']} epoch(s){step}"
    except Exception:
        where = "unreadable"
    return f"the last finite checkpoint there ({where}) is kept"


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> str:
    """Save ``state`` (must hold the keys of a run checkpoint) atomically with its digest sidecar.

    The payload is stored weights-only (tensors on the CPU, plain Python values) with its inner digest
    (``integrity``). Returns the SHA-256 of the written file.

    Raises:
        ValueError: required keys missing.
        TypeError: a field that a weights-only checkpoint cannot hold (e.g. a NumPy array), named.
        NonFiniteCheckpointError: NaN/Inf in a floating-point tensor; nothing is written.
    """
    path = os.fspath(path)
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks keys {missing}")
    payload = _to_plain({k: v for k, v in state.items() if k != _INTEGRITY}, "")
    bad = nonfinite_tensors(payload)
    if bad:
        step = f" + {payload['step']} step(s)" if payload.get("step") else ""
        raise NonFiniteCheckpointError(
            path, bad, f"after {payload['epoch']} epoch(s){step}", _describe_existing(path)
        )
    payload[_INTEGRITY] = {"scheme": DIGEST_SCHEME, "sha256": payload_digest(payload)}
    buf = io.BytesIO()
    torch.save(payload, buf)
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


_TORCH_BOILERPLATE = (
    "weights only load failed",
    "in pytorch 2.6",
    "please file an issue",
    "check the documentation",
)


def _refusal_reason(exc: BaseException) -> str:
    """What torch's weights-only unpickler refused (e.g. the blocked GLOBAL), without its advice."""
    text = str(exc)
    found = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    if found:
        reason = found.group(1)
    else:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        useful = [
            ln
            for ln in lines
            if not ln.startswith("(") and not any(b in ln.lower() for b in _TORCH_BOILERPLATE)
        ]
        reason = useful[0] if useful else type(exc).__name__
    reason = re.sub(r"\x1b\[[0-9;]*m", "", reason).split(" Please use ")[0].split(" was not an allowed")[0]
    return reason[:200].rstrip(". ")


def _is_zip(path: str) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except (OSError, ValueError, zipfile.BadZipFile):  # a damaged end record can raise instead of False
        return False


def _move(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        out = type(obj)((k, _move(v, device)) for k, v in obj.items())
        if getattr(obj, "_metadata", None) is not None:
            out._metadata = obj._metadata
        return out
    if isinstance(obj, list | tuple):
        items = [_move(v, device) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    return obj


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    modes: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Load and verify a run checkpoint, weights-only.

    Args:
        path: the ``checkpoint.pt`` file.
        map_location: device of the returned tensors (the file is read and verified on the CPU).
        modes: if given, the run modes this checkpoint may come from (e.g. ``("ann",)``).
    Raises:
        CheckpointError: missing file; sidecar digest mismatch; unreadable/truncated file; a pickle that
            is not weights-only (refused without running anything in it); inner digest mismatch or
            absent; wrong format, structure or mode.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    digests = _read_sidecar(path)
    if digests is not None:
        actual = sha256_file(path)
        if actual not in digests:
            raise CheckpointError(
                f"{path}: checkpoint is corrupt or truncated (SHA-256 {actual[:12]}… does not match "
                f"{_sidecar(path)}); {_HINT}"
            )
    if not _is_zip(path):  # torch.save's format; the legacy raw-pickle format is never read
        raise CheckpointError(
            f"{path}: checkpoint cannot be read (not a torch.save zip archive: truncated, or not a "
            f"checkpoint); {_HINT}"
        )
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" not in str(exc).lower():
            raise CheckpointError(
                f"{path}: checkpoint cannot be read (UnpicklingError: {exc}); {_HINT}"
            ) from exc
        raise CheckpointError(
            f"{path}: not a weights-only checkpoint: {_refusal_reason(exc)}. Refused without unpickling "
            "it (a pickle can run code); lmht checkpoints hold only tensors and plain values"
        ) from None
    except Exception as exc:  # torch raises RuntimeError/EOFError/... on a damaged file
        reason = " ".join(str(exc).split())[:200]
        raise CheckpointError(
            f"{path}: checkpoint cannot be read ({type(exc).__name__}: {reason}); {_HINT}"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else None
        was = f" (this file: {found})" if isinstance(found, str) else ""
        raise CheckpointError(
            f"{path}: not an lmht run checkpoint (format {CHECKPOINT_FORMAT} expected{was})"
        )
    integrity = state.get(_INTEGRITY)
    if not isinstance(integrity, dict) or integrity.get("scheme") != DIGEST_SCHEME:
        raise CheckpointError(f"{path}: checkpoint has no inner digest ({DIGEST_SCHEME}); {_HINT}")
    try:
        actual = payload_digest(state)
    except TypeError as exc:
        raise CheckpointError(f"{path}: checkpoint holds unexpected values ({exc}); {_HINT}") from exc
    if actual != integrity.get("sha256"):
        raise CheckpointError(
            f"{path}: checkpoint is corrupt (its contents do not match the digest stored inside it); {_HINT}"
        )
    missing = [k for k in _REQUIRED if k not in state]
    if missing or not isinstance(state["model"], Mapping):
        raise CheckpointError(f"{path}: checkpoint structure is incomplete (missing {missing or ['model']})")
    if modes is not None and state["mode"] not in tuple(modes):
        raise CheckpointError(
            f"{path}: checkpoint of a '{state['mode']}' run; expected one of {', '.join(modes)}"
        )
    device = torch.device(map_location) if isinstance(map_location, str) else map_location
    return state if device.type == "cpu" else _move(state, device)
