"""From a resolved config to the objects of a run: parent checkpoint, validated config, data, networks.

Config flows one way (``lmht.config`` → here → the engine)::

    cfg = resolve_config(mode, file, overrides)     # lmht.config: defaults < file < overrides, typed
    run = prepare(mode, cfg)                        # load the parent checkpoint, inherit its network
                                                    # keys, then validate the config that will run
    ... build_data(run.cfg), build_network(...)     # the engine builds from run.cfg only

Nothing built here writes back into a config. The builders are the only place where config keys turn
into constructor arguments (``neuron_kwargs``, ``hybrid_kwargs``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from lmht import checkpoint as ckpt_io
from lmht.config import ANN_NEURONS, ConfigError, check_values, resolve_config
from lmht.experiment.modes import get_mode

__all__ = [
    "Prepared",
    "build_ann",
    "build_direct_snn",
    "build_hybrid_snn",
    "dataset_options",
    "hybrid_kwargs",
    "load_config",
    "neuron_kwargs",
    "prepare",
    "rebuild",
    "validate",
]


# ==================================================================================================
# Config keys -> constructor arguments
# ==================================================================================================
def dataset_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Options for ``lmht.data.dataset_info`` / ``create_dataset``: ``dataset_options`` plus ``frames``."""
    options = dict(cfg["dataset_options"])
    if cfg["frames"] is not None:
        options["frames"] = cfg["frames"]
    return options


#: config key -> neuron keyword argument, per neuron name (names not listed use "default")
NEURON_OPTIONS: dict[str, dict[str, str]] = {
    "lmht": {
        "v_init": "v_init",
        "tgim_init": "tgim_init",
        "learn_tgim": "learn_tgim",
        "tgim_param": "tgim_param",
        "leak": "leak_init",
        "learn_leak": "learn_leak",
        "surrogate": "surrogate",
        "backend": "backend",
    },
    "mht": {"v_init": "v_init", "leak": "leak_init", "surrogate": "surrogate", "backend": "backend"},
    "default": {"v_init": "v_init", "leak": "leak", "surrogate": "surrogate", "backend": "backend"},
}
#: IF/LIF: the gradient through the membrane and the reset (``IFNeuron(gradient=...)``; BPTT is the paper's)
NEURON_OPTIONS["if"] = NEURON_OPTIONS["lif"] = {**NEURON_OPTIONS["default"], "if_gradient": "gradient"}
#: options of the hybrid initialization a config may set (θ, v_init, T-GIM and λ are fixed by Thm. 4.4)
HYBRID_OPTIONS = {
    "learn_tgim": "learn_tgim",
    "tgim_param": "tgim_param",
    "learn_leak": "learn_leak",
    "surrogate": "surrogate",
    "backend": "backend",
}


def _options(cfg: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, Any]:
    kw = {arg: cfg[key] for key, arg in table.items() if cfg[key] is not None}
    if kw.get("backend") == "auto":
        del kw["backend"]
    return kw


def neuron_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``create_neuron(cfg.neuron, ...)`` for direct training (``v_init`` null -> 0)."""
    values = {**cfg, "v_init": 0.0 if cfg["v_init"] is None else cfg["v_init"]}
    return _options(values, NEURON_OPTIONS.get(cfg["neuron"], NEURON_OPTIONS["default"]))


def hybrid_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``qcfs_to_lmht`` that the config may set."""
    return _options(cfg, HYBRID_OPTIONS)


# ==================================================================================================
# Networks
# ==================================================================================================
def build_ann(cfg: Mapping[str, Any], info: Any) -> nn.Module:
    """ReLU ANN ``cfg.arch``, with QCFS activations when ``cfg.levels >= 1``."""
    from lmht.convert import relu_to_qcfs
    from lmht.models import create_model

    model = create_model(
        cfg["arch"], num_classes=info.num_classes, in_chans=info.in_chans, **cfg["model_options"]
    )
    if cfg["levels"] > 0:
        relu_to_qcfs(model, cfg["levels"], threshold=cfg["qcfs_threshold"])
    return model


def build_direct_snn(cfg: Mapping[str, Any], info: Any) -> nn.Module:
    """The SNN of a direct run: ``cfg.arch`` with every ReLU replaced by ``cfg.neuron``."""
    from lmht.convert import build_snn
    from lmht.models import create_model

    ann = create_model(
        cfg["arch"], num_classes=info.num_classes, in_chans=info.in_chans, **cfg["model_options"]
    )
    return build_snn(
        ann,
        cfg["neuron"],
        cfg["L"],
        cfg["T"],
        tuple(info.input_size),
        encoding=info.encoding,
        frame_input=cfg["frame_input"],
        threshold=cfg["threshold"],
        **neuron_kwargs(cfg),
    )


def build_hybrid_snn(cfg: Mapping[str, Any], info: Any, ann: nn.Module) -> nn.Module:
    """The LM-HT SNN of a hybrid run, initialized from the QCFS ANN ``ann``."""
    from lmht.convert import qcfs_to_lmht

    return qcfs_to_lmht(
        ann,
        cfg["L"],
        cfg["T"],
        tuple(info.input_size),
        encoding=info.encoding,
        init=cfg["hybrid_init"],
        frame_input=cfg["frame_input"],
        **hybrid_kwargs(cfg),
    )


def rebuild(state: Mapping[str, Any], info: Any) -> nn.Module:
    """The network of a checkpoint (``ann``, ``direct`` or ``hybrid`` run), rebuilt as it was trained and
    loaded with its weights (on the CPU)."""
    cfg = state["config"]
    if state.get("kind") == "ann":
        model = build_ann(cfg, info)
    elif state["mode"] == "hybrid":
        ann = build_ann(cfg, info)
        ann.load_state_dict(state["ann_model"])
        model = build_hybrid_snn(cfg, info, ann)
    else:
        model = build_direct_snn(cfg, info)
    model.load_state_dict(state["model"])
    return model


# ==================================================================================================
# Parent checkpoint, inheritance and validation
# ==================================================================================================
@dataclass
class Prepared:
    """A run ready to start: the config that will run, the mode and its parent checkpoint.

    Attributes:
        mode: CLI mode.
        cfg: the validated config (parent keys already inherited).
        parent: the loaded parent checkpoint (convert/hybrid: a QCFS ANN; reparam: an SNN), or None.
        inherited: ``{key: {"config": given, "checkpoint": used}}`` for every key the parent changed.
        input_digest: SHA-256 of the parent checkpoint file (part of the run's identity), or None.
    """

    mode: str
    cfg: dict[str, Any]
    parent: dict[str, Any] | None = None
    inherited: dict[str, Any] = field(default_factory=dict)
    input_digest: str | None = None


def _load_parent(mode: str, cfg: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    spec = get_mode(mode)
    key = spec.parent_key
    if key is None:
        return None, None
    path = cfg[key]
    if not path:
        raise ConfigError(f"'{key}' is required in {mode} mode (path to a checkpoint.pt)")
    if not os.path.isfile(path):
        raise ConfigError(f"'{key}': checkpoint file not found: {path}")
    state = ckpt_io.load_checkpoint(path, modes=spec.parent_modes)
    if key == "ann_checkpoint" and (state.get("kind") != "ann" or state["config"].get("levels", 0) < 1):
        raise ConfigError(
            f"'{key}': {path} is not a QCFS ANN checkpoint (train one with `lmht ann levels=Q`, Q >= 1)"
        )
    if key == "snn_checkpoint" and state.get("kind") != "snn":
        raise ConfigError(f"'{key}': {path} is not an SNN checkpoint (an ANN trained in direct mode?)")
    return state, ckpt_io.sha256_file(path)


def _inherit(mode: str, cfg: dict[str, Any], parent: Mapping[str, Any] | None) -> dict[str, Any]:
    """Set the network-defining keys of ``cfg`` from the parent checkpoint's config; return what changed."""
    if parent is None:
        return {}
    changed = {}
    source = parent["config"]
    for key in get_mode(mode).inherits:
        if key in source and cfg.get(key) != source[key]:
            changed[key] = {"config": cfg.get(key), "checkpoint": source[key]}
            cfg[key] = source[key]
    return changed


def prepare(mode: str, cfg: Mapping[str, Any], check_files: bool = True) -> Prepared:
    """Load the parent checkpoint of ``mode`` (if any), inherit its network keys, normalize, validate.

    Raises:
        ConfigError: naming the key at fault (config values, registry names, missing files/data).
        lmht.checkpoint.CheckpointError: a parent checkpoint that is corrupt or of the wrong kind.
    """
    cfg = dict(cfg)
    check_values(cfg, mode)
    parent, digest = _load_parent(mode, cfg) if check_files else (None, None)
    inherited = _inherit(mode, cfg, parent)
    if mode == "direct" and cfg["neuron"] == "relu":
        cfg["levels"] = 0  # a ReLU ANN
    validate(cfg, mode, check_files=check_files)
    return Prepared(mode, cfg, parent, inherited, digest)


def load_config(mode: str, config_file: str | None = None, overrides=(), check_files: bool = True) -> dict:
    """Resolve (defaults < file < overrides), inherit from the parent checkpoint and validate: the config
    that ``lmht MODE`` would run (convenience for scripts and tests)."""
    return prepare(mode, resolve_config(mode, config_file, overrides), check_files=check_files).cfg


def _known(names: Iterable[str]) -> str:
    return ", ".join(names)


def validate(cfg: Mapping[str, Any], mode: str, check_files: bool = True) -> None:
    """Check the config that will run: values (:func:`lmht.config.check_values`), the names the
    registries resolve (dataset, arch, neuron, surrogate, backend), that the neuron and the architecture
    accept their arguments (built on the meta device), mode constraints and, with ``check_files``, that
    the dataset opens from ``data_root``.

    Raises:
        ConfigError: naming the key at fault (and the path and expected layout for missing data).
    """
    from lmht import data as lmht_data
    from lmht import kernels, models, neurons, surrogate

    check_values(cfg, mode)
    if cfg["dataset"] not in lmht_data.list_datasets():
        raise ConfigError(
            f"'dataset': unknown dataset '{cfg['dataset']}' (known: {_known(lmht_data.list_datasets())})"
        )
    try:
        info = lmht_data.dataset_info(cfg["dataset"], **dataset_options(cfg))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"'dataset_options' / 'frames': {exc}") from exc
    arch = cfg["arch"]
    if (arch if arch.startswith("lmht_") else f"lmht_{arch}") not in models.list_models():
        known = _known(m.removeprefix("lmht_") for m in models.list_models())
        raise ConfigError(f"'arch': unknown model '{arch}' (known: {known})")
    neuron = cfg["neuron"]
    known_neurons = [*neurons.list_neurons(), *ANN_NEURONS]
    if neuron not in known_neurons:
        raise ConfigError(f"'neuron': unknown neuron '{neuron}' (known: {_known(known_neurons)})")
    if mode == "hybrid" and neuron != "lmht":
        raise ConfigError(f"'neuron': hybrid fine-tunes an LM-HT network (neuron=lmht), got '{neuron}'")
    if mode == "hybrid" and cfg["tgim_init"] != "uniform":
        raise ConfigError(
            "'tgim_init': the hybrid initialization starts from a uniform T-GIM (Theorem 4.4), "
            f"got '{cfg['tgim_init']}'"
        )
    if mode == "direct" and neuron == "qcfs" and cfg["levels"] < 1:
        raise ConfigError("'levels' must be >= 1 when neuron=qcfs (QCFS quantization levels Q)")
    if cfg["surrogate"] not in surrogate.list_surrogates():
        raise ConfigError(
            f"'surrogate': unknown surrogate '{cfg['surrogate']}' "
            f"(known: {_known(surrogate.list_surrogates())})"
        )
    backends = ["auto", *kernels.list_backends()]
    if cfg["backend"] not in backends:
        raise ConfigError(f"'backend': unknown backend '{cfg['backend']}' (known: {_known(backends)})")
    if mode in ("direct", "hybrid") and neuron not in ANN_NEURONS:  # let the neuron check its arguments
        name, kw = (neuron, neuron_kwargs(cfg)) if mode == "direct" else ("lmht", hybrid_kwargs(cfg))
        try:
            neurons.create_neuron(name, L=cfg["L"], T=cfg["T"], threshold=cfg["threshold"], **kw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"'neuron' ({name}, L={cfg['L']}, T={cfg['T']}): {exc}") from exc
    import torch

    try:  # build the architecture without memory to check model_options
        with torch.device("meta"):
            models.create_model(
                arch, num_classes=info.num_classes, in_chans=info.in_chans, **cfg["model_options"]
            )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"'model_options' of {arch}: {exc}") from exc
    steps = [cfg["T"], *([cfg["convert_steps"]] if mode == "convert" else [])]
    if mode == "convert" and cfg["T"] > cfg["convert_steps"]:
        raise ConfigError(
            f"'T' ({cfg['T']}) must be <= convert_steps ({cfg['convert_steps']}) in convert mode"
        )
    if cfg["frame_input"] != "mean" and info.encoding != "frames":
        raise ConfigError(f"'frame_input': {cfg['frame_input']!r} applies to event datasets only, and "
                          f"{cfg['dataset']} has static images")
    if info.encoding == "frames" and info.frames and cfg["frame_input"] == "bins":
        for t in steps:
            if info.frames % t:
                raise ConfigError(
                    f"'frames' ({info.frames}) must be a multiple of T ({t}) for {cfg['dataset']} with "
                    "frame_input=bins (or use frame_input=mean, the authors' input, for any T)"
                )
    if (cfg["mixup"] > 0 or cfg["cutmix"] > 0) and cfg["batch_size"] % 2:
        raise ConfigError(f"'batch_size' must be even with Mixup/CutMix, got {cfg['batch_size']}")
    if check_files:
        try:  # opening the test split finds missing files; the error names the path and the layout
            lmht_data.create_dataset(
                cfg["dataset"], cfg["data_root"], train=False, seed=cfg["data_seed"], **dataset_options(cfg)
            )
        except (OSError, lmht_data.DataFileError) as exc:  # DatasetNotFoundError (path, layout), corrupt file
            raise ConfigError(f"'data_root': {exc}") from exc
