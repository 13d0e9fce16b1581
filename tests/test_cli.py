"""The ``lmht`` CLI end to end on the synthetic dataset: every mode, config resolution and validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from lmht import cli
from lmht.build import load_config
from lmht.config import SCHEMA, ConfigError, resolve_config

# Fashion-MNIST-shaped synthetic data, noisy enough that accuracy is not trivially 100 %.
SYNTHETIC = {
    "dataset": "synthetic",
    "dataset_options": {"in_chans": 1, "image_size": 28, "length": 192, "noise": 6.0},
    "arch": "fmnist_cnn",
    "model_options": {"widths": [4, 8], "hidden": 16},
    "batch_size": 32,
    "epochs": 1,
    "T": 2,
    "L": 2,
}


def write_config(path, **extra) -> str:
    path.write_text(yaml.safe_dump({**SYNTHETIC, **extra}))
    return str(path)


def run_cli(*args: str) -> int:
    return cli.main([str(a) for a in args])


def read_metrics(out) -> dict:
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as fh:
        return json.load(fh)


REQUIRED = (
    "top1",
    "top1_per_step",
    "best_top1",
    "history",
    "firing_rate",
    "sops",
    "energy_mj",
    "params",
    "wall_time_s",
    "device",
    "versions",
    "config",
    "mode",
)


def check_outputs(out, mode: str, steps: int) -> dict:
    m = read_metrics(out)
    for key in REQUIRED:
        assert key in m, key
    assert m["mode"] == mode
    assert len(m["top1_per_step"]) == steps
    assert 0 <= m["top1"] <= 100
    assert set(m["versions"]) >= {"python", "torch", "lmht", "git_commit"}
    for name in ("train_log.csv", "checkpoint.pt", "tgim.json", "config.yaml"):
        if name == "checkpoint.pt" and mode in ("convert", "reparam"):
            continue
        assert os.path.exists(os.path.join(out, name)), name
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    return m


@pytest.fixture(scope="module")
def ann_run(tmp_path_factory):
    """A QCFS ANN with Q = T·L = 4 (shared by convert, hybrid and reparam)."""
    d = tmp_path_factory.mktemp("ann")
    cfg = write_config(d / "cfg.yaml", epochs=2)
    out = d / "out"
    assert run_cli("ann", "--config", cfg, "--out", out, "levels=4", "lr=0.05") == 0
    return cfg, out


def test_ann_mode(ann_run):
    _, out = ann_run
    m = check_outputs(out, "ann", 1)
    assert m["config"]["levels"] == 4
    assert [row["epoch"] for row in m["history"]] == [1, 2]
    assert set(m["history"][0]) >= {"epoch", "train_loss", "train_acc", "test_acc", "lr", "seconds"}
    assert m["sops"] == 0 and m["first_layer_macs"] > 0 and m["as_ratio"] is None  # an ANN: MACs only
    assert m["top1"] > 30


def test_convert_mode(ann_run, tmp_path):
    cfg, ann_out = ann_run
    out = tmp_path / "convert"
    assert (
        run_cli("convert", "-c", cfg, "-o", out, f"ann_checkpoint={ann_out}/checkpoint.pt", "convert_steps=8")
        == 0
    )
    m = check_outputs(out, "convert", 8)
    assert m["top1"] == m["top1_per_step"][1]  # the config's T = 2
    assert m["top1_at"]["2"] == m["top1"] and len(m["top1_at"]) == 8
    assert m["history"] == []
    assert m["sops"] > 0 and m["firing_rate"]
    assert m["ann_top1"] == read_metrics(ann_out)["top1"]


def test_hybrid_init_equals_ann_then_reparam(ann_run, tmp_path):
    cfg, ann_out = ann_run
    out = tmp_path / "hybrid"
    assert (
        run_cli(
            "hybrid",
            "-c",
            cfg,
            "-o",
            out,
            f"ann_checkpoint={ann_out}/checkpoint.pt",
            "lr=5e-4",
            "weight_decay=5e-4",
            "hybrid_init=exact",
        )
        == 0
    )
    m = check_outputs(out, "hybrid", 2)
    # our exact initialization with Q = T·L: the converted LM-HT network predicts like the QCFS ANN
    assert m["init_top1"] == pytest.approx(m["ann_top1"])
    assert m["variants"] == {
        "tgim_param": "sigmoid",
        "hybrid_init": "exact",
        "if_gradient": "bptt",
        "frame_input": "mean",
    }
    assert m["ann_top1"] == pytest.approx(read_metrics(ann_out)["top1"])
    tgim = json.loads((out / "tgim.json").read_text())
    layer = next(iter(tgim.values()))
    assert layer["L"] == 2 and layer["T"] == 2 and len(layer["tgim"]) == 2 and layer["leak"] is not None

    rep = tmp_path / "reparam"
    assert run_cli("reparam", "-c", cfg, "-o", rep, f"snn_checkpoint={out}/checkpoint.pt") == 0
    r = check_outputs(rep, "reparam", 4)  # T·L steps after reparameterization
    assert set(r["reparam"]) >= {"before", "after", "agreement"}
    for side in ("before", "after"):
        assert set(r["reparam"][side]) >= {"top1", "top1_per_step", "sops", "energy_mj"}
    assert r["reparam"]["before"]["top1"] == pytest.approx(m["top1"])
    assert r["top1"] == r["reparam"]["after"]["top1"]
    assert r["reparam"]["agreement"] > 90
    assert abs(r["reparam"]["after"]["top1"] - r["reparam"]["before"]["top1"]) <= 5


def test_hybrid_default_is_the_papers_algorithm_1(ann_run, tmp_path):
    cfg, ann_out = ann_run
    out = tmp_path / "hybrid"
    assert run_cli("hybrid", "-c", cfg, "-o", out, f"ann_checkpoint={ann_out}/checkpoint.pt", "epochs=0") == 0
    m = read_metrics(out)
    assert m["variants"]["hybrid_init"] == "algorithm1" and m["config"]["hybrid_init"] == "algorithm1"


@pytest.mark.parametrize("neuron", ["lmht", "mht", "if", "lif", "relu", "qcfs"])
def test_direct_mode(neuron, tmp_path):
    cfg = write_config(tmp_path / "cfg.yaml")
    out = tmp_path / "out"
    extra = ["L=1"] if neuron in ("if", "lif") else []
    extra += ["levels=4"] if neuron == "qcfs" else []
    assert run_cli("direct", "-c", cfg, "-o", out, f"neuron={neuron}", *extra) == 0
    snn = neuron not in ("relu", "qcfs")
    m = check_outputs(out, "direct", 2 if snn else 1)
    assert m["kind"] == ("snn" if snn else "ann")
    if snn:
        assert m["sops"] > 0 and m["first_layer_macs"] > 0 and m["ann_macs"] > m["first_layer_macs"]
        rates = list(m["firing_rate"].values())
        assert rates and all(0 <= r <= (2 if neuron in ("lmht", "mht") else 1) for r in rates)
        assert m["energy_mj"] == pytest.approx(0.9 * m["sops"] * 1e-9)  # the paper's E = 0.9 pJ x SOPs
        assert m["energy_first_layer_mac_mj"] == pytest.approx(
            (0.9 * m["sops"] + 4.6 * m["first_layer_macs"]) * 1e-9
        )
        assert m["as_ratio"] == pytest.approx(4.6 * m["ann_macs"] / (0.9 * m["sops"]))


def test_completed_run_exits_immediately_and_restart(ann_run, tmp_path, capsys):
    cfg, ann_out = ann_run
    before = os.stat(ann_out / "metrics.json").st_mtime_ns
    assert run_cli("ann", "-c", cfg, "-o", ann_out, "levels=4", "lr=0.05") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert os.stat(ann_out / "metrics.json").st_mtime_ns == before
    # a different configuration in the same folder is refused, naming the difference
    assert run_cli("ann", "-c", cfg, "-o", ann_out, "levels=4", "lr=0.07") == 2
    assert "lr: 0.05 -> 0.07" in capsys.readouterr().err
    out = tmp_path / "r"
    assert run_cli("direct", "-c", cfg, "-o", out) == 0
    assert run_cli("direct", "-c", cfg, "-o", out, "seed=1") == 2
    assert run_cli("direct", "-c", cfg, "-o", out, "seed=1", "--restart") == 0
    assert read_metrics(out)["config"]["seed"] == 1


# ------------------------------------------------------------------------------------------ config
def test_defaults_cover_the_schema_and_presets_resolve():
    for mode in ("ann", "direct", "hybrid", "convert", "reparam"):
        cfg = resolve_config(mode)
        assert set(cfg) == set(SCHEMA)
    c100 = resolve_config("direct", "cifar100")
    assert (c100["dataset"], c100["cutout"], c100["lr"], c100["batch_size"]) == ("cifar100", 12, 0.025, 64)
    assert c100["optimizer"] == "sgd" and c100["nesterov"] and c100["epochs"] == 300
    from lmht.build import neuron_kwargs

    assert (
        c100["threshold"] is None and neuron_kwargs(c100)["v_init"] == 0.0 and c100["tgim_init"] == "uniform"
    )
    assert c100["tgim_param"] == "sigmoid" and c100["hybrid_init"] == "algorithm1"
    assert resolve_config("direct", "cifar10")["cutout"] == 16
    hyb = resolve_config("hybrid", "cifar100")
    assert (hyb["epochs"], hyb["lr"], hyb["weight_decay"]) == (30, 5e-4, 5e-4)
    ann = resolve_config("ann", "cifar10")
    assert ann["levels"] == 8 and ann["qcfs_threshold"] == 8.0
    dvs = resolve_config("direct", "cifar10_dvs")
    assert (dvs["optimizer"], dvs["lr"], dvs["weight_decay"], dvs["frames"]) == ("adamw", 0.02, 0.01, 10)
    assert resolve_config("direct", "imagenet200")["lr"] == 0.0125
    inet = resolve_config("direct", "imagenet")
    assert inet["weight_decay"] == 0.0 and inet["mixup"] > 0
    assert resolve_config("direct", "fashion_mnist")["dataset"] == "fashion_mnist"


#: The presets' training settings (the paper's appendix; the authors' main.py where it is silent), pinned
#: so that a change to lmht/configs/*.yaml is a decision, not an accident (docs/fidelity.md, row 20).
_SGD = dict(batch_size=64, optimizer="sgd")
PAPER_PRESETS = {
    "cifar10": dict(arch="resnet19", lr=0.025, epochs=300, weight_decay=5e-4, **_SGD),
    "cifar100": dict(arch="resnet19", lr=0.025, epochs=300, weight_decay=5e-4, **_SGD),
    "imagenet200": dict(arch="vgg13", lr=0.0125, epochs=320, weight_decay=5e-4, model_options={"hidden": 0},
                        **_SGD),
    "imagenet": dict(arch="resnet34", lr=0.1, epochs=320, weight_decay=0.0, mixup=0.8, cutmix=1.0,
                     label_smoothing=0.1, model_options={"stem": "imagenet"}, **_SGD),
    "cifar10_dvs": dict(arch="resnet18", lr=0.02, epochs=320, batch_size=64, weight_decay=0.01,
                        optimizer="adamw", autoaugment=False),
}  # fmt: skip


@pytest.mark.parametrize("dataset", sorted(PAPER_PRESETS))
def test_presets_hold_the_papers_settings(dataset):
    cfg = resolve_config("direct", dataset)
    common = dict(L=2, T=2, momentum=0.9, scheduler="cosine", nesterov=True, autoaugment=True, amp="none",
                  convert_steps=64, model_options={}, mixup=0.0, cutmix=0.0, label_smoothing=0.0)  # fmt: skip
    for key, value in {**common, **PAPER_PRESETS[dataset]}.items():
        assert cfg[key] == value, (dataset, key, cfg[key])
    if dataset in ("cifar10", "cifar100"):
        ann = resolve_config("ann", dataset)
        assert (ann["lr"], ann["epochs"], ann["levels"], ann["qcfs_threshold"]) == (0.1, 300, 8, 8.0)


@pytest.mark.parametrize("neuron", ["if", "lif"])
def test_variant_keys_reach_the_networks_they_change(neuron):
    """``if_gradient`` reaches every IF/LIF neuron (BPTT by default); ``frame_input`` and
    ``hybrid_init`` reach the network builders."""
    from types import SimpleNamespace

    from lmht.build import build_direct_snn
    from lmht.neurons import IFNeuron

    info = SimpleNamespace(num_classes=10, in_chans=1, input_size=(1, 28, 28), encoding="frames")
    for value in ("bptt", "detached"):
        cfg = resolve_config(
            "direct", overrides=[f"neuron={neuron}", "L=1", f"if_gradient={value}", "frame_input=bins"]
        )
        net = build_direct_snn(cfg, info)
        neurons = [m for m in net.modules() if isinstance(m, IFNeuron)]
        assert neurons and {n.gradient for n in neurons} == {value}
        assert net.frame_input == "bins"
    assert {
        n.gradient
        for n in build_direct_snn(
            resolve_config("direct", overrides=[f"neuron={neuron}", "L=1"]), info
        ).modules()
        if isinstance(n, IFNeuron)
    } == {"bptt"}


def test_overrides_are_typed_by_the_schema():
    cfg = resolve_config(
        "direct",
        overrides=[
            "lr=1e-3",
            "epochs=3",
            "betas=[0.8, 0.9]",
            "ann_checkpoint=null",
            "grad_clip=1",
            "amp=bf16",
            "nesterov=false",
        ],
    )
    assert cfg["lr"] == 1e-3 and isinstance(cfg["lr"], float)
    assert cfg["epochs"] == 3 and cfg["betas"] == [0.8, 0.9] and cfg["ann_checkpoint"] is None
    assert cfg["grad_clip"] == 1.0 and isinstance(cfg["grad_clip"], float)
    assert cfg["amp"] == "bf16" and cfg["nesterov"] is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learning_rate=0.1", "unknown config key 'learning_rate'"),
        ("epochs=two", "'epochs' must be of type int"),
        ("epochs=1.5", "'epochs' must be of type int"),
        ("nesterov=3", "'nesterov' must be true or false"),
        ("L=0", "'L' must be >= 1"),
        ("T=0", "'T' must be >= 1"),
        ("levels=-1", "'levels' must be >= 0"),
        ("lr=-1", "'lr' must be >= 0"),
        ("dataset=mnist3d", "'dataset': unknown dataset 'mnist3d'"),
        ("arch=resnet999", "'arch': unknown model 'resnet999'"),
        ("neuron=izhikevich", "'neuron': unknown neuron 'izhikevich'"),
        ("optimizer=lamb", "'optimizer' must be one of"),
        ("tgim_init=diagonal", "'tgim_init' must be one of"),
        ("surrogate=nope", "'surrogate': unknown surrogate"),
        ("device=tpu", "'device'"),
        ("betas=[0.9]", "'betas'"),
        ("epochs", "expected key=value"),
        ("neuron=if", "single threshold level"),  # L = 2 from the defaults
        ("leak=0.2", "leak_init must lie in (0.5, 1.5)"),
        ("model_options={bogus: 1}", "'model_options' of fmnist_cnn"),
        ("dataset_options={bogus: 1}", "'dataset_options'"),
    ],
)
def test_config_errors_name_the_key(override, message, tmp_path, capsys):
    assert run_cli("direct", "--out", tmp_path / "o", "dataset=synthetic", override) == 2
    err = capsys.readouterr().err
    assert "config error" in err and message in err
    assert not (tmp_path / "o").exists()  # validated before any work


@pytest.mark.parametrize(
    ("mode", "key"),
    [("convert", "ann_checkpoint"), ("hybrid", "ann_checkpoint"), ("reparam", "snn_checkpoint")],
)
def test_missing_checkpoint(mode, key, tmp_path, capsys):
    assert run_cli(mode, "--out", tmp_path / "o", "dataset=synthetic") == 2
    assert f"'{key}' is required" in capsys.readouterr().err
    assert run_cli(mode, "--out", tmp_path / "o", "dataset=synthetic", f"{key}={tmp_path}/none.pt") == 2
    err = capsys.readouterr().err
    assert f"'{key}': checkpoint file not found" in err and "none.pt" in err


def test_missing_dataset_root_names_path_and_layout(tmp_path, capsys):
    root = tmp_path / "nowhere"
    assert (
        run_cli("direct", "--out", tmp_path / "o", "dataset=cifar10", f"data_root={root}", "arch=cifarnet")
        == 2
    )
    err = capsys.readouterr().err
    assert "'data_root'" in err and str(root) in err and "expected" in err


def test_mode_constraints(tmp_path, capsys):
    assert run_cli("direct", "--out", tmp_path / "o", "dataset=synthetic", "neuron=qcfs", "levels=0") == 2
    assert "'levels' must be >= 1 when neuron=qcfs" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="convert_steps"):
        load_config("convert", overrides=["dataset=synthetic", "T=8", "convert_steps=4"], check_files=False)
    with pytest.raises(ConfigError, match="uniform T-GIM"):
        load_config("hybrid", overrides=["dataset=synthetic", "tgim_init=identity"], check_files=False)
    with pytest.raises(ConfigError, match="hybrid fine-tunes an LM-HT"):
        load_config("hybrid", overrides=["dataset=synthetic", "neuron=if"], check_files=False)


def test_unknown_config_file_and_bad_yaml(tmp_path, capsys):
    assert run_cli("direct", "-c", tmp_path / "missing.yaml", "-o", tmp_path / "o") == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [1, 2\n")
    assert run_cli("direct", "-c", bad, "-o", tmp_path / "o") == 2
    assert "not valid YAML" in capsys.readouterr().err
    modes = tmp_path / "modes.yaml"
    modes.write_text("modes: {train: {lr: 1.0}}\n")
    assert run_cli("direct", "-c", modes, "-o", tmp_path / "o") == 2
    assert "'modes'" in capsys.readouterr().err


def test_print_config(capsys):
    assert run_cli("hybrid", "-c", "cifar10", "--print-config", "epochs=5") == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["epochs"] == 5 and cfg["lr"] == 5e-4 and cfg["dataset"] == "cifar10"


def test_python_m_lmht_and_help():
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    res = subprocess.run(
        [sys.executable, "-m", "lmht", "direct", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0
    assert "key=value" in res.stdout and "tgim_init" in res.stdout
    res = subprocess.run(
        [sys.executable, "-m", "lmht", "train"], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 2 and "invalid choice" in res.stderr


def test_checkpoint_holds_what_resume_needs(ann_run):
    _, out = ann_run
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    for key in (
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "epoch",
        "best_top1",
        "history",
        "rng",
        "config_hash",
        "config",
    ):
        assert key in state, key
    assert set(state["rng"]) >= {"python", "numpy", "torch", "generators"}
    assert "train_loader" in state["rng"]["generators"]


@pytest.mark.slow
def test_torchrun_ddp_on_cpu(tmp_path):
    """Two processes with the gloo backend: DistributedSampler, all-reduced metrics, rank 0 writes."""
    cfg = write_config(tmp_path / "cfg.yaml", epochs=1, progress=False)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    if not os.path.exists(torchrun):
        pytest.skip("torchrun not installed next to the interpreter")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    }
    out = tmp_path / "ddp"
    res = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "lmht", "direct", "-c", cfg, "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    m = check_outputs(out, "direct", 2)
    assert m["world_size"] == 2
    assert res.stdout.count("epoch 1/1") == 1  # only rank 0 logs


# ------------------------------------------------------------------------------------------ user errors
def _mistakes(tmp_path) -> dict[str, list]:
    """Mistaken command lines (and the files they point to), by name."""
    cfg = write_config(tmp_path / "cfg.yaml")
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "latin1.yaml").write_bytes(b"lr: 0.1 # \xe9t\xe9\n")
    (tmp_path / "list.yaml").write_text("- lr: 0.1\n")
    (tmp_path / "garbage.pt").write_bytes(b"\x00" * 64)
    out = ["-o", str(tmp_path / "out")]
    direct = ["direct", "-c", cfg, *out]
    return {
        "-c is a folder": ["direct", "-c", tmp_path / "folder", *out],
        "-c is not UTF-8": ["direct", "-c", tmp_path / "latin1.yaml", *out],
        "-c holds a list": ["direct", "-c", tmp_path / "list.yaml", *out],
        "-c does not exist": ["direct", "-c", tmp_path / "nope.yaml", *out],
        "-o is an existing file": ["direct", "-c", cfg, "-o", tmp_path / "a_file"],
        "-o is under a file": ["direct", "-c", cfg, "-o", tmp_path / "a_file" / "sub"],
        "no -o": ["direct", "-c", cfg],
        "unknown mode": ["train", "-c", cfg],
        "unknown flag": [*direct, "--bogus"],
        "-c without a value": ["direct", *out, "-c"],
        "no mode": [],
        "override without =": [*direct, "epochs"],
        "override with bad YAML": [*direct, "betas=[0.9"],
        "ann_checkpoint is a folder": ["hybrid", "-c", cfg, *out, f"ann_checkpoint={tmp_path / 'folder'}"],
        "ann_checkpoint is garbage": [
            "convert",
            "-c",
            cfg,
            *out,
            f"ann_checkpoint={tmp_path / 'garbage.pt'}",
        ],
        "data_root is a file": ["direct", *out, "dataset=cifar10", f"data_root={tmp_path / 'a_file'}"],
        "null for a required key": [*direct, "epochs=null"],
        "nan learning rate": [*direct, "lr=.nan"],
        "odd training set below one batch with mixup": [
            *direct,
            "train_subset=33",
            "batch_size=64",
            "mixup=0.2",
        ],
    }


MISTAKES = [
    "-c is a folder",
    "-c is not UTF-8",
    "-c holds a list",
    "-c does not exist",
    "-o is an existing file",
    "-o is under a file",
    "no -o",
    "unknown mode",
    "unknown flag",
    "-c without a value",
    "no mode",
    "override without =",
    "override with bad YAML",
    "ann_checkpoint is a folder",
    "ann_checkpoint is garbage",
    "data_root is a file",
    "null for a required key",
    "nan learning rate",
    "odd training set below one batch with mixup",
]


@pytest.mark.parametrize("case", MISTAKES)
def test_user_mistakes_exit_2_with_one_line(case, tmp_path):
    """Every user error: exit status 2, one readable line on stderr, no traceback (CLI subprocess)."""
    args = [str(a) for a in _mistakes(tmp_path)[case]]
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    res = subprocess.run(
        [sys.executable, "-m", "lmht", *args], capture_output=True, text=True, env=env, timeout=300
    )
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("lmht"), res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_debug_flag_shows_the_traceback(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        run_cli("direct", "-c", tmp_path, "-o", tmp_path / "o", "--debug")
    assert run_cli("direct", "-c", tmp_path, "-o", tmp_path / "o") == 2


def test_input_warnings_reach_stderr_and_metrics(tmp_path, capsys):
    cfg = write_config(tmp_path / "cfg.yaml")
    out = tmp_path / "w"
    small = ["train_subset=6", "test_subset=8", "batch_size=64", "lr=0"]
    assert run_cli("ann", "-c", cfg, "-o", out, *small) == 0
    err = capsys.readouterr().err
    warnings = read_metrics(out)["warnings"]
    assert len(warnings) == 4, warnings
    for text in ("larger than the training set (6 samples)", "only 6 of the 10 classes", "lr=0", "test set"):
        assert any(text in w for w in warnings), (text, warnings)
        assert "lmht: warning: input: " in err and text in err
