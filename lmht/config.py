"""Run configuration: defaults, presets, ``key=value`` overrides and validation.

A run's configuration is one flat mapping (the keys of ``lmht/configs/default.yaml``). It is resolved in
this order, later sources winning::

    default.yaml  <  FILE (top level)  <  FILE ``modes: {MODE: {...}}``  <  key=value overrides

``FILE`` is a path or the name of a packaged preset (``cifar10``, ``cifar100``, ``imagenet200``,
``imagenet``, ``cifar10_dvs``, ``fashion_mnist``). A preset's ``modes`` section holds the settings that
differ per training mode (e.g. the hybrid fine-tuning schedule). Overrides are parsed as YAML
(``lr=1e-3``, ``amp=bf16``, ``betas=[0.9,0.99]``, ``ann_checkpoint=null``) and typed by the key's
schema type. :func:`check_values` checks types, ranges and choices and raises :class:`ConfigError`
naming the offending key.

This module is a leaf: it knows the keys, not what they build. Checks that need the registries or the
files (dataset names, architectures, checkpoints, data roots) live in :mod:`lmht.build`, which also
applies what a run inherits from its parent checkpoint *before* validating the config that will run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from lmht.experiment.modes import MODES
from lmht.experiment.variants import VARIANTS

__all__ = [
    "ANN_NEURONS",
    "MODES",
    "SCHEMA",
    "ConfigError",
    "as_yaml",
    "check_values",
    "config_diff",
    "config_hash",
    "list_presets",
    "parse_overrides",
    "resolve_config",
]

#: Neuron names that mean "train an ANN" in direct mode (relu: levels forced to 0; qcfs: levels >= 1).
ANN_NEURONS = ("relu", "qcfs")


class ConfigError(ValueError):
    """An invalid run configuration. The message names the key (or file) at fault."""


@dataclass(frozen=True)
class Key:
    """Schema entry of one config key: accepted type(s), bounds and a description."""

    type: type | tuple[type, ...]
    help: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    #: Keys that do not change a run's results; they are left out of :func:`config_hash`.
    volatile: bool = False


SCHEMA: dict[str, Key] = {
    # data
    "dataset": Key(str, "dataset name, see lmht.data (synthetic, fashion_mnist, cifar10, ...)"),
    "data_root": Key(
        str,
        "root folder of the dataset files; null = the dataset's default locations (Fashion-MNIST: "
        "Debian's /usr/share/datasets/fashion-mnist, then ./data); a given root is never replaced",
        nullable=True,
        volatile=True,
    ),
    "dataset_options": Key(
        dict,
        "dataset-specific options of lmht.data.create_dataset (e.g. synthetic in_chans, image_size, length)",
    ),
    "data_seed": Key(int, "seed of the data itself: subset choice, synthetic samples, DVS split", min=0),
    "train_subset": Key(int, "train on a seeded class-stratified subset of N samples; 0 = all", min=0),
    "test_subset": Key(int, "same for the test set; 0 = all", min=0),
    "frames": Key(int, "event datasets: frames per sample (must be a multiple of T)", min=1, nullable=True),
    "augment": Key(bool, "crop + flip on training images; null = the dataset's default", nullable=True),
    "autoaugment": Key(bool, "AutoAugment (the dataset's policy) on static training images"),
    "cutout": Key(int, "Cutout square side in pixels; 0 = off", min=0),
    "mixup": Key(float, "Mixup alpha; 0 = off", min=0),
    "cutmix": Key(float, "CutMix alpha; 0 = off", min=0),
    "label_smoothing": Key(float, "label smoothing of the cross-entropy", min=0, max=1),
    "workers": Key(int, "data loader worker processes", min=0),
    # model
    "arch": Key(str, "model name registered in timm by lmht.models (with or without the lmht_ prefix)"),
    "model_options": Key(dict, "keyword arguments of the architecture (e.g. img_size, widths)"),
    "neuron": Key(str, "lmht | mht | if | lif (SNN); relu | qcfs trains an ANN in direct mode"),
    "L": Key(int, "threshold levels of the LM-HT neuron", min=1),
    "T": Key(int, "time steps", min=1),
    "threshold": Key(
        float,
        "direct: neuron threshold θ; null = 2/L for lmht/mht, 1.0 for if/lif "
        "(convert/hybrid: θ = ϑ of the QCFS layer)",
        nullable=True,
    ),
    "v_init": Key(
        float, "direct: initial membrane as a fraction of θ; null = 0 (convert/hybrid: 0.5)", nullable=True
    ),
    "tgim_init": Key(
        str, "direct: T-GIM initialization (hybrid: uniform)", choices=("uniform", "identity", "random")
    ),
    "learn_tgim": Key(bool, "learn the T-GIM"),
    "tgim_param": Key(str, VARIANTS["tgim_param"].help, choices=VARIANTS["tgim_param"].choices),
    "hybrid_init": Key(str, VARIANTS["hybrid_init"].help, choices=VARIANTS["hybrid_init"].choices),
    "if_gradient": Key(str, VARIANTS["if_gradient"].help, choices=VARIANTS["if_gradient"].choices),
    "frame_input": Key(str, VARIANTS["frame_input"].help, choices=VARIANTS["frame_input"].choices),
    "leak": Key(
        float, "initial leak λ (lmht) or fixed leak (lif); null = the neuron's default", nullable=True, min=0
    ),
    "learn_leak": Key(bool, "learn the leak λ (lmht)"),
    "surrogate": Key(str, "surrogate gradient name (lmht.surrogate)"),
    "levels": Key(int, "QCFS quantization levels Q of the ANN; 0 = ReLU", min=0),
    "qcfs_threshold": Key(float, "initial QCFS threshold ϑ", min=0),
    "backend": Key(str, "neuron kernel backend (lmht.kernels); auto picks the fastest available"),
    # optimization
    "epochs": Key(int, "training epochs", min=0),
    "batch_size": Key(int, "batch size per process", min=1),
    "eval_batch_size": Key(int, "evaluation batch size; null = batch_size", min=1, nullable=True),
    "optimizer": Key(str, "sgd | adamw", choices=("sgd", "adamw")),
    "lr": Key(float, "base learning rate", min=0),
    "weight_decay": Key(float, "weight decay", min=0),
    "momentum": Key(float, "SGD momentum", min=0, max=1),
    "nesterov": Key(bool, "Nesterov momentum (SGD)"),
    "betas": Key(list, "AdamW betas [beta1, beta2]"),
    "scheduler": Key(str, "learning-rate schedule (timm.scheduler)", choices=("cosine", "none")),
    "sched_on": Key(
        str, "advance the schedule once per epoch or once per optimizer step", choices=("epoch", "step")
    ),
    "warmup_epochs": Key(int, "linear warm-up epochs", min=0),
    "warmup_lr": Key(float, "learning rate at the start of the warm-up", min=0),
    "min_lr": Key(float, "final learning rate of the cosine schedule", min=0),
    "grad_clip": Key(float, "clip the gradient norm to this value; 0 = off", min=0),
    "freeze_bn": Key(
        bool,
        "keep BatchNorm layers in eval mode while training (running statistics fixed; "
        "affine weights still learn), e.g. to keep the exact hybrid init",
    ),
    "amp": Key(
        str, "autocast on CUDA: none | bf16 | fp16 (ignored on CPU)", choices=("none", "bf16", "fp16")
    ),
    "sync_bn": Key(bool, "convert BatchNorm to SyncBatchNorm under DDP"),
    # conversion / checkpoints
    "ann_checkpoint": Key(str, "QCFS ANN checkpoint.pt (convert, hybrid)", nullable=True),
    "snn_checkpoint": Key(str, "LM-HT SNN checkpoint.pt of a direct or hybrid run (reparam)", nullable=True),
    "convert_steps": Key(int, "convert: longest T of the accuracy-vs-time curve", min=1),
    # run control
    "seed": Key(int, "seed of every RNG (torch, numpy, random, data order, augmentation)", min=0),
    "deterministic": Key(bool, "torch.use_deterministic_algorithms(True)"),
    "device": Key(str, "auto | cpu | cuda | cuda:N"),
    "checkpoint_every": Key(
        int, "also checkpoint every N optimizer steps; 0 = per epoch only", min=0, volatile=True
    ),
    "resume": Key(bool, "resume from checkpoint.pt in --out when present", volatile=True),
    "progress": Key(bool, "tqdm progress bars (off anyway when stderr is not a TTY)", volatile=True),
}


def _packaged(name: str) -> Any:
    return resources.files("lmht").joinpath("configs", name)


def list_presets() -> list[str]:
    """Names of the packaged presets (``lmht/configs/*.yaml`` except ``default``)."""
    return sorted(
        p.name[: -len(".yaml")]
        for p in resources.files("lmht").joinpath("configs").iterdir()
        if p.name.endswith(".yaml") and p.name != "default.yaml"
    )


def _read_yaml(source: str, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def _load_file(path_or_preset: str) -> tuple[str, dict[str, Any]]:
    if os.path.exists(path_or_preset):
        if os.path.isdir(path_or_preset):
            raise ConfigError(
                f"--config {path_or_preset}: is a folder; expected a YAML file or a preset name"
            )
        try:
            with open(path_or_preset, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--config {path_or_preset}: cannot be read ({exc})") from exc
        return path_or_preset, _read_yaml(path_or_preset, text)
    name = path_or_preset.removesuffix(".yaml")
    res = _packaged(f"{name}.yaml")
    if os.sep not in path_or_preset and res.is_file():
        return f"preset {name}", _read_yaml(f"preset {name}", res.read_text(encoding="utf-8"))
    raise ConfigError(
        f"--config {path_or_preset}: no such file, and not a preset (presets: {', '.join(list_presets())})"
    )


def _coerce(key: str, value: Any, source: str) -> Any:
    """Type ``value`` by the schema of ``key``; raise ConfigError naming the key when impossible."""
    if key not in SCHEMA:
        close = [k for k in SCHEMA if k.lower() == key.lower() or k.startswith(key[:3])]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"{source}: unknown config key '{key}'{hint}")
    spec = SCHEMA[key]
    if value is None:
        if spec.nullable:
            return None
        raise ConfigError(f"{source}: '{key}' must not be null ({spec.help})")
    want = spec.type
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if want is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if want is list and isinstance(value, tuple):
        return list(value)
    if want is bool and not isinstance(value, bool):
        raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
    if want is not bool and isinstance(value, bool):
        raise ConfigError(f"{source}: '{key}' must be of type {want.__name__}, got a boolean {value!r}")
    if not isinstance(value, want):
        raise ConfigError(
            f"{source}: '{key}' must be of type {want.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; the value is YAML (``null``, ``true``, ``[1, 2]``, ``1e-3``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override '{item}': expected key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override '{item}': value is not valid YAML: {exc}") from exc
        out[key] = _coerce(key, value, f"override {key}=")
    return out


def _apply(cfg: dict[str, Any], updates: Mapping[str, Any], source: str) -> None:
    for key, value in updates.items():
        cfg[key] = _coerce(key, value, source)


def resolve_config(
    mode: str, config_file: str | None = None, overrides: Sequence[str] | Mapping[str, Any] = ()
) -> dict[str, Any]:
    """Merge defaults, a config file (with its ``modes`` section for ``mode``) and overrides.

    Types are checked as keys are merged; :func:`lmht.build.prepare` then inherits what the mode takes
    from its parent checkpoint and validates the result.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown mode '{mode}' (one of {', '.join(MODES)})")
    defaults = _read_yaml("default.yaml", _packaged("default.yaml").read_text(encoding="utf-8"))
    defaults.pop("modes", None)
    missing = sorted(set(SCHEMA) - set(defaults))
    if missing:
        raise ConfigError(f"default.yaml lacks keys {missing}")
    cfg: dict[str, Any] = {}
    _apply(cfg, defaults, "default.yaml")
    if config_file:
        source, data = _load_file(config_file)
        modes = data.pop("modes", None) or {}
        if not isinstance(modes, dict) or not set(modes) <= set(MODES):
            raise ConfigError(f"{source}: 'modes' must map mode names ({', '.join(MODES)}) to settings")
        _apply(cfg, data, source)
        section = modes.get(mode) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: modes.{mode} must be a mapping")
        _apply(cfg, section, f"{source} (modes.{mode})")
    if isinstance(overrides, Mapping):
        _apply(cfg, overrides, "override")
    else:
        _apply(cfg, parse_overrides(overrides), "override")
    return cfg



def _check_range(cfg: Mapping[str, Any]) -> None:
    for key, spec in SCHEMA.items():
        value = cfg[key]
        if spec.choices is not None and value not in spec.choices:
            raise ConfigError(f"'{key}' must be one of {list(spec.choices)}, got {value!r}")
        if value is None or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"'{key}' must be finite, got {value}")
        if spec.min is not None and value < spec.min:
            raise ConfigError(f"'{key}' must be >= {spec.min:g}, got {value} ({spec.help})")
        if spec.max is not None and value > spec.max:
            raise ConfigError(f"'{key}' must be <= {spec.max:g}, got {value} ({spec.help})")
    betas = cfg["betas"]
    if len(betas) != 2 or not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
        raise ConfigError(f"'betas' must be two numbers in [0, 1), got {betas!r}")
    for key in ("threshold", "qcfs_threshold"):
        if cfg[key] is not None and cfg[key] <= 0:
            raise ConfigError(f"'{key}' must be > 0, got {cfg[key]}")
    dev = cfg["device"]
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"'device' must be auto, cpu, cuda or cuda:N, got {dev!r}")


def check_values(cfg: Mapping[str, Any], mode: str) -> None:
    """Check a resolved config's keys, types, ranges and choices (no registries, no files).

    Raises:
        ConfigError: naming the key at fault.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown mode '{mode}' (one of {', '.join(MODES)})")
    unknown = sorted(set(cfg) - set(SCHEMA))
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
    missing = sorted(set(SCHEMA) - set(cfg))
    if missing:
        raise ConfigError(f"missing config key(s): {', '.join(missing)}")
    for key, value in cfg.items():
        _coerce(key, value, "config")
    _check_range(cfg)


def config_hash(cfg: Mapping[str, Any], mode: str | None = None) -> str:
    """SHA-256 (hex, 16 chars) of the result-relevant keys (volatile keys excluded) and the mode."""
    stable = {k: v for k, v in cfg.items() if not (k in SCHEMA and SCHEMA[k].volatile)}
    payload = json.dumps({"mode": mode, "config": stable}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Result-relevant keys whose values differ between two configs: ``{key: (a, b)}``."""
    keys = (set(a) | set(b)) - {k for k, s in SCHEMA.items() if s.volatile}
    return {k: (a.get(k), b.get(k)) for k in sorted(keys) if a.get(k) != b.get(k)}


def as_yaml(cfg: Mapping[str, Any]) -> str:
    """The resolved config as YAML, in schema order (what a run writes as config.yaml)."""
    ordered = {k: copy.deepcopy(cfg[k]) for k in SCHEMA if k in cfg}
    return yaml.safe_dump(ordered, sort_keys=False)
