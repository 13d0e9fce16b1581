"""The run record: the typed content of a cell's ``metrics.json``, written by the engine (or, for a cell
that could not run, by the workflow's ``run_cell.py``) and read by every consumer.

``metrics.json`` is written last and atomically, so its presence marks a finished cell. It holds either
a :class:`RunRecord` (``status: "ok"``) or a :class:`FailureRecord` (``status: "failed"``). Readers call
:func:`read_record`, which returns ``(status, reason, record)`` with status ``ok | failed | missing``
and never raises for a bad file: an unreadable record is a failed cell with the reason.

Units: accuracies in percent of the test set, SOPs and MACs per image, energy in millijoules per image,
wall time in seconds. Non-finite numbers are written as JSON null.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "METRICS_FILE",
    "EvalSummary",
    "FailureRecord",
    "ReparamResult",
    "RunRecord",
    "read_record",
    "write_json_atomic",
    "write_record",
]

METRICS_FILE = "metrics.json"


@dataclass
class EvalSummary:
    """One evaluation of a network on the test set.

    Attributes:
        top1: accuracy of the time-mean output after the last step.
        top1_per_step: accuracy of the cumulative mean output after each step t = 1..T.
        test_loss: cross-entropy of the time-mean output.
        firing_rate: per spiking layer, mean spike level per neuron and step (0..L).
        sops: synaptic operations per image (a level-k spike costs k accumulates).
        sops_value: the authors' count: input spike values k·θ × fan-out (equal to ``sops`` when θ = 1).
        first_layer_macs: multiply-accumulates per image of the analog layers before the first neuron.
        energy_mj: the paper's energy, 0.9 pJ × sops, in mJ per image.
        energy_first_layer_mac_mj: 0.9 pJ × sops + 4.6 pJ × first_layer_macs (the other convention).
        ann_macs: MACs per image of the same architecture run as an ANN.
        ann_energy_mj: 4.6 pJ × ann_macs, in mJ per image.
        as_ratio: ann_energy_mj / energy_mj (the authors' "A/S power ratio").
        sops_per_layer: per conv/linear layer, its counts per image (lmht.metrics.OpsReport.per_layer).
    """

    top1: float
    top1_per_step: list[float] = field(default_factory=list)
    test_loss: float | None = None
    firing_rate: dict[str, float] = field(default_factory=dict)
    sops: float | None = None
    sops_value: float | None = None
    first_layer_macs: float | None = None
    energy_mj: float | None = None
    energy_first_layer_mac_mj: float | None = None
    ann_macs: float | None = None
    ann_energy_mj: float | None = None
    as_ratio: float | None = None
    sops_per_layer: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class ReparamResult:
    """Before/after of a reparameterization (LM-HT over T steps -> single threshold over T·L steps)."""

    before: EvalSummary
    after: EvalSummary
    agreement: float  # % of test images with the same prediction
    delta_top1: float  # after - before
    T_after: int


@dataclass
class RunRecord(EvalSummary):
    """A finished run: the final evaluation plus how it was obtained.

    Mode-specific fields are None where they do not apply: ``init_top1`` (hybrid: right after the
    hybrid initialization), ``ann_top1``/``ann_levels`` (convert, hybrid: the QCFS ANN it came from),
    ``top1_at`` (convert: accuracy at each step, keyed by the step as a string), ``reparam`` and
    ``source_mode`` (reparam). ``variants`` holds the value of every variant key the run used
    (:mod:`lmht.experiment.variants`; the paper's method unless stated), ``warnings`` what the run
    noticed (e.g. divergence, a training set smaller than one batch per class).
    """

    mode: str = ""
    kind: str = ""  # "ann" or "snn"
    status: str = "ok"
    best_top1: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    params: int | None = None
    wall_time_s: float | None = None
    device: str = ""
    world_size: int = 1
    versions: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    input_checkpoint_sha256: str | None = None
    inherited_from_checkpoint: dict[str, Any] = field(default_factory=dict)
    init_top1: float | None = None
    ann_top1: float | None = None
    ann_levels: int | None = None
    top1_at: dict[str, float] | None = None
    reparam: ReparamResult | None = None
    source_mode: str | None = None
    variants: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Build from parsed JSON; unknown keys raise (a record written by a different version)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}")
        values = dict(data)
        rep = values.get("reparam")
        if isinstance(rep, dict):
            values["reparam"] = ReparamResult(
                before=EvalSummary(**rep["before"]),
                after=EvalSummary(**rep["after"]),
                agreement=rep["agreement"],
                delta_top1=rep["delta_top1"],
                T_after=rep["T_after"],
            )
        if not isinstance(values.get("top1"), int | float) or isinstance(values.get("top1"), bool):
            raise ValueError("no numeric top1")
        return cls(**values)


@dataclass
class FailureRecord:
    """A cell that did not finish (written by ``workflow/scripts/run_cell.py`` with on_failure=record)."""

    mode: str
    error: str
    status: str = "failed"
    command: str = ""
    returncode: int | None = None
    requeued: bool = False
    log: str = ""
    wall_time_s: float | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _finite(value: Any) -> Any:
    """Replace non-finite floats by None, recursively (JSON has no NaN/Inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as JSON (non-finite numbers as null) to a temporary file in the same folder and
    move it into place: a kill leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(data), indent=2, default=str, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_record(path: str | os.PathLike, record: RunRecord | FailureRecord) -> None:
    """Write a record as ``metrics.json`` (atomically)."""
    write_json_atomic(path, record.to_dict())


def read_record(path: str | os.PathLike) -> tuple[str, str, RunRecord | FailureRecord | None]:
    """``(status, reason, record)`` of a cell's metrics.json: ``ok`` with a RunRecord, ``failed`` with the
    reason (a FailureRecord when the file is one), or ``missing``. Never raises for a bad file."""
    path = Path(path)
    if not path.is_file():
        return "missing", "no metrics.json (not run yet, or removed)", None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return "failed", f"unreadable metrics.json: {exc}", None
    if not isinstance(data, dict):
        return "failed", "metrics.json is not a JSON object", None
    if data.get("status", "ok") != "ok":
        names = {f.name for f in dataclasses.fields(FailureRecord)}
        failure = FailureRecord(
            **{k: v for k, v in data.items() if k in names}
            | {"mode": str(data.get("mode", "")), "error": str(data.get("error") or "failed")}
        )
        lines = failure.error.strip().splitlines()
        return "failed", "failed: " + (lines[-1] if lines else "unknown error"), failure
    try:
        return "ok", "", RunRecord.from_dict(data)
    except (TypeError, ValueError, KeyError) as exc:
        return "failed", f"metrics.json is not a run record: {exc}", None
