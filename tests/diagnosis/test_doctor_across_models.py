"""Rules that hold across model families: recurrent layers, clipping, zero-initialised weights,
loss trends of regression runs, and remedies fitted to the run (issue 12, section 3)."""

from __future__ import annotations

import torch
from torch import nn

from fathom.config import OptimConfig, TrainConfig
from fathom.data.loader import TensorLoader
from fathom.diagnosis import Diagnostics
from fathom.diagnosis.doctor import diagnose_records, format_diagnoses
from fathom.diagnosis.measures import update_statistics
from fathom.engine import Trainer
from fathom.tasks.classification import Classification


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        output, _ = self.lstm(inputs.unsqueeze(1))
        return self.head(output[:, -1])


def train(bundle, model, clip=None, epochs=2):
    torch.manual_seed(0)
    diagnostics = Diagnostics(None, bundle, every=3)
    trainer = Trainer(
        model,
        Classification(3),
        TensorLoader(bundle.train, 16, shuffle=True, seed=0),
        TensorLoader(bundle.val, 64),
        train=TrainConfig(epochs=epochs, threads=1, grad_clip_norm=clip),
        optim=OptimConfig(name="sgd", lr=0.5),
        callbacks=[diagnostics],
    )
    trainer.fit()
    return [record for record in diagnostics.records if record["kind"] == "sample"]


def test_recurrent_layers_are_recorded(blobs):
    samples = train(blobs, Recurrent())
    layers = samples[0]["layers"]
    assert "lstm" in layers, list(layers)
    assert layers["lstm"]["grad_norm"] > 0 and layers["lstm"]["update_ratio"] > 0


def test_gradient_norms_are_those_after_clipping(blobs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    with torch.no_grad():
        model[0].weight.mul_(50.0)  # large gradients: clipping is active
    samples = train(blobs, model, clip=0.1)
    clipped = [stats for s in samples for stats in s["layers"].values() if "grad_norm_raw" in stats]
    assert clipped, "no clipped gradients recorded"
    assert all(stats["grad_norm"] <= 0.1 + 1e-4 for stats in clipped)
    assert any(stats["grad_norm_raw"] > stats["grad_norm"] for stats in clipped)


def test_update_ratio_ignores_parameters_that_start_at_zero():
    weight, bias = torch.randn(8, 8) * 0.1, torch.zeros(8)
    stats = update_statistics([weight, bias], [weight + 1e-4, bias + 1e-3])
    assert float(stats["update_ratio"]) < 0.01  # the bias's 'infinite' ratio is left out
    only_zero = update_statistics([torch.zeros(4)], [torch.full((4,), 1e-3)])
    assert "update_ratio" not in only_zero


def run_record(**facts):
    return {"kind": "run", "lr": 0.1, "weight_decay": 0.0, "grad_clip_norm": None,
            "epochs": 5, "validation": True, "model": {"name": "mlp", "hidden": [64]}, **facts}  # fmt: skip


def exploding_samples():
    layer = {"grad_norm": 500.0, "update_ratio": 3e-3, "std": 1.0}
    return [{"kind": "sample", "step": s, "layers": {"a": layer, "b": layer, "c": layer}}
            for s in (1, 11, 21)]  # fmt: skip


def test_a_remedy_already_in_force_is_not_printed():
    metrics = [
        {"kind": "train", "loss": 1.0 / (i + 1), "accuracy": 0.99, "lr": 0.1} for i in range(4)
    ]
    off = diagnose_records([run_record(), *exploding_samples()], metrics)
    assert "train.grad_clip_norm=1.0" in off[0].overrides
    on = diagnose_records([run_record(grad_clip_norm=1.0), *exploding_samples()], metrics)
    assert on[0].key == "exploding_gradients"
    assert "train.grad_clip_norm=1.0" not in on[0].overrides
    assert any(item.startswith("optim.lr=") for item in on[0].overrides)


def test_remedies_name_only_options_the_model_takes():
    metrics = [{"kind": "train", "loss": 2.0, "accuracy": 0.4, "lr": 0.1} for _ in range(4)]
    mlp = diagnose_records([run_record()], metrics)
    assert [d.key for d in mlp] == ["underfitting"]
    assert "model.hidden=[128]" in mlp[0].overrides and "train.epochs=10" in mlp[0].overrides
    lstm = run_record(model={"name": "lstm", "hidden_size": 64})
    recurrent = diagnose_records([lstm], metrics)[0].overrides
    assert not any(item.startswith("model.hidden=") for item in recurrent)
    assert "model.hidden_size=128" in recurrent
    custom = diagnose_records([run_record(model=None)], metrics)[0].overrides
    assert not any(item.startswith("model.") for item in custom)
    learning = [{**record, "loss": 2.0 / (i + 1)} for i, record in enumerate(metrics)]
    assert diagnose_records([run_record()], learning) == []  # still learning fast: not underfit


def test_without_a_validation_split_the_skipped_check_is_said():
    metrics = [{"kind": "train", "loss": 0.1, "accuracy": 0.99, "lr": 0.1} for _ in range(4)]
    diagnoses = diagnose_records([run_record(validation=False)], metrics)
    assert list(diagnoses) == [] and "overfitting" in diagnoses.not_checked[0]
    assert "not checked: overfitting" in format_diagnoses(diagnoses)


def test_a_divergence_before_any_log_line_still_says_lower_the_learning_rate():
    nonfinite = {"kind": "nonfinite", "step": 3, "first_layer": "fc (Linear)"}
    diagnoses = diagnose_records([run_record(lr=1.0), nonfinite], [])
    assert diagnoses[0].key == "non_finite" and "optim.lr=0.1" in diagnoses[0].overrides


def test_regression_loss_trend_starts_from_the_first_step():
    """A run whose loss blew up early: the first logged loss (after the blow-up) hides it."""
    big = {"grad_norm": 1.0, "update_ratio": 0.5, "std": 1.0}
    samples = [{"kind": "sample", "step": s, "layers": {"a": big, "b": big}} for s in (1, 11)]
    metrics = [{"kind": "train", "loss": loss, "lr": 1.0} for loss in (50.0, 5.0, 1.2, 1.1)]
    assert diagnose_records(samples, metrics, classifier=False) == []  # from 50: 'the loss fell'
    first = {"kind": "first_loss", "step": 1, "loss": 1.0}
    found = diagnose_records([first, *samples], metrics, classifier=False)
    assert [d.key for d in found] == ["lr_too_high"]


def test_copies_with_a_different_id_are_still_leakage():
    from fathom.data.bundle import DataBundle, DataInfo, Split
    from fathom.diagnosis.datachecks import check_bundle

    generator = torch.Generator().manual_seed(0)
    features = torch.randn(200, 4, generator=generator)
    ids = torch.arange(200, dtype=torch.float32).unsqueeze(1)
    train = Split(torch.cat([ids, features], 1), torch.randint(0, 2, (200,), generator=generator))
    copied = torch.cat([ids[:50] + 1000, features[:50]], 1)  # the same rows, new ids
    info = DataInfo("table", "classification", (5,), num_classes=2,
                    feature_names=["id", "a", "b", "c", "d"])  # fmt: skip
    bundle = DataBundle(info, train, None, Split(copied, train.targets[:50]))
    record = {"kind": "data", **check_bundle(bundle)}
    assert record["duplicates"]["test"]["in_train"] == 50
    assert record["duplicates"]["test"]["ignoring"] == ["id"]
    leakage = [d for d in diagnose_records([record], []) if d.key == "leakage"]
    assert leakage and "id-like column id" in leakage[0].evidence


def test_leakage_remedy_dedupe_is_printed_and_clears_the_diagnosis(tmp_path):
    """A CSV with every row twice under two ids, trained the CLI way: the doctor prints
    data.dedupe=true, and the rerun with it scores only unseen rows (no leakage left)."""
    import pytest

    from fathom.cli import main
    from fathom.diagnosis.doctor import read_diagnosis

    lines = ["id,a,b,label"]
    for row in range(300):
        lines += [f"{2 * row + copy},{row % 17},{row % 13},{row % 3 == 0:d}" for copy in (0, 1)]
    (tmp_path / "twice.csv").write_text("\n".join(lines) + "\n")
    arguments = ["train", str(tmp_path / "twice.csv"), "data.target=label", "model.name=mlp",
                 "--epochs", "3", "--quiet", "train.threads=1"]  # fmt: skip
    assert main([*arguments, "--run-dir", str(tmp_path / "plain")]) == 0
    run = next((tmp_path / "plain").iterdir())
    found = {d.key: d for d in read_diagnosis(run) or []}
    assert found["leakage"].overrides == ["data.dedupe=true"]
    with pytest.warns(UserWarning, match="data.dedupe: left out"):
        assert main([*arguments, "data.dedupe=true", "--run-dir", str(tmp_path / "fixed")]) == 0
    rerun = next((tmp_path / "fixed").iterdir())
    assert "leakage" not in {d.key for d in read_diagnosis(rerun) or []}
    # the run's config keeps it: eval, resume and the report drop the same rows
    assert "dedupe: true" in (rerun / "config.yaml").read_text()
