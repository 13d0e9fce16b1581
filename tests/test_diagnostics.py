"""lmht.diagnostics: warnings for inputs that train uselessly and for finite divergence (pure functions),
and the engine writing them to metrics.json."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from lmht import cli
from lmht.diagnostics import DivergenceCriteria, InputError, divergence_warnings, input_warnings


def rows(*values):
    """History rows from (train_loss, test_acc[, test_loss]) tuples."""
    out = []
    for epoch, v in enumerate(values, 1):
        train_loss, test_acc, test_loss = (*v, 1.0) if len(v) == 2 else v
        out.append({"epoch": epoch, "train_loss": train_loss, "test_acc": test_acc, "test_loss": test_loss})
    return out


# ------------------------------------------------------------------------------------------ divergence
def test_healthy_runs_give_no_warning():
    assert divergence_warnings([], 10) == []
    assert divergence_warnings(rows((2.0, 40.0), (1.2, 60.0), (0.9, 70.0)), 10) == []
    # a hybrid fine-tuning that starts low and wobbles stays quiet (never worse than a uniform guess)
    assert divergence_warnings(rows((0.05, 90.0), (0.3, 88.0), (0.6, 87.0)), 10) == []
    # one epoch at chance is too early to call
    assert divergence_warnings(rows((2.3, 10.0)), 10) == []


def test_loss_blow_up_is_flagged_once():
    warnings = divergence_warnings(rows((2.0, 30.0), (5e3, 30.0), (1e9, 30.0)), 10)
    assert len(warnings) == 1
    assert warnings[0].startswith("diverged: training loss 5000 at epoch 2")
    assert "ln(10) = 2.303" in warnings[0]


def test_loss_reference_is_the_smaller_of_first_loss_and_uniform_guess():
    # first epoch already bad (loss 40): the reference is ln(10), so 30 at epoch 2 is still flagged
    assert divergence_warnings(rows((40.0, 30.0), (30.0, 30.0)), 10)
    # a rise that stays below ln(C) is never flagged, however large the ratio
    assert divergence_warnings(rows((0.01, 99.0), (2.0, 95.0)), 10) == []


def test_accuracy_at_chance_after_min_epochs():
    warnings = divergence_warnings(rows((2.3, 9.0), (2.3, 11.0)), 10)
    assert warnings == [
        "diverged: test accuracy 11.00% after 2 epochs is at chance level (10.00% for 10 classes)"
    ]
    assert divergence_warnings(rows((2.3, 9.0), (2.3, 16.0)), 10) == []  # above 1.5 x chance
    strict = DivergenceCriteria(chance_factor=2.0, min_epochs=1)
    assert divergence_warnings(rows((2.3, 16.0)), 10, strict)
    assert divergence_warnings(rows((5.0, 0.6), (5.0, 0.7)), 200)  # 200 classes: chance 0.5 %


def test_non_finite_test_loss_is_flagged():
    warnings = divergence_warnings(rows((2.0, 50.0, 1.0), (1.5, 60.0, math.inf)), 10)
    assert warnings == ["diverged: test loss is inf at epoch 2"]
    assert divergence_warnings(rows((2.0, 50.0, None)), 10) == []  # unknown, not non-finite


# ------------------------------------------------------------------------------------------ inputs
def base(**kw):
    args = dict(
        num_classes=10,
        train_size=100,
        train_targets=[i % 10 for i in range(100)],
        test_targets=[i % 10 for i in range(50)],
        batch_size=32,
        epochs=3,
        lr=0.1,
        warmup_epochs=0,
    )
    args.update(kw)
    return args


def test_sensible_inputs_give_no_warning():
    assert input_warnings(**base()) == []
    assert input_warnings(**base(train_size=None, train_targets=None)) == []  # evaluation only
    assert input_warnings(**base(epochs=0, train_size=3, train_targets=[0, 1, 2])) == []  # no training


def test_borderline_inputs_warn():
    few = input_warnings(**base(train_size=5, train_targets=[0, 1, 2, 3, 4]))
    assert len(few) == 2
    assert "batch_size=32 is larger than the training set (5 samples)" in few[0]
    assert "holds only 5 of the 10 classes" in few[1]
    assert all(w.startswith("input: ") for w in few)
    assert "lr=0" in input_warnings(**base(lr=0.0))[0]
    assert "warmup_epochs=3 >= epochs=3" in input_warnings(**base(warmup_epochs=3))[0]
    test_warn = input_warnings(**base(test_targets=[0, 1, 2]))
    assert len(test_warn) == 1 and "test set (3 samples) holds only 3 of the 10 classes" in test_warn[0]
    # class coverage is skipped when labels are unknown
    assert input_warnings(**base(train_targets=None, test_targets=None)) == []


def test_inputs_that_form_no_batch_are_errors():
    with pytest.raises(InputError, match="empty"):
        input_warnings(**base(train_size=0, train_targets=[]))
    with pytest.raises(InputError, match="even batch"):
        input_warnings(**base(train_size=33, batch_size=64, train_targets=[0] * 33, even_batches=True))
    # an even partial batch with Mixup works: a warning only
    assert input_warnings(
        **base(train_size=32, batch_size=64, train_targets=list(range(10)) * 3 + [0, 1], even_batches=True)
    )


# ------------------------------------------------------------------------------------------ engine hook
def test_finite_divergence_lands_in_metrics(tmp_path, capsys):
    """lr = 10 with plain SGD on a BatchNorm CNN: the loss stays finite but far above ln(10) and the
    network ends at chance; the run succeeds and metrics.json carries the warnings."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "dataset": "synthetic",
                "dataset_options": {"in_chans": 1, "image_size": 28, "length": 128, "noise": 6.0},
                "arch": "fmnist_cnn",
                "model_options": {"widths": [4, 8], "hidden": 16},
                "batch_size": 32,
                "epochs": 3,
                "progress": False,
            }
        )
    )
    out = tmp_path / "o"
    assert cli.main(["ann", "-c", str(cfg), "-o", str(out), "lr=10", "momentum=0", "scheduler=none"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["warnings"], metrics["history"]
    assert all(w.startswith("diverged: ") for w in metrics["warnings"])
    err = capsys.readouterr().err
    assert all(f"lmht: warning: {w}" in err for w in metrics["warnings"])
