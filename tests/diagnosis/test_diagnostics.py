"""The diagnostics callback: what it records, that it changes nothing, that it never breaks training."""

from __future__ import annotations

import json
import warnings

import torch
from torch import nn

from fathom.config import OptimConfig, TrainConfig
from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.data.loader import TensorLoader
from fathom.diagnosis import Diagnostics
from fathom.diagnosis import diagnostics as diagnostics_module
from fathom.diagnosis.diagnostics import activation_statistics
from fathom.engine import Trainer
from fathom.tasks.base import Task
from fathom.tasks.classification import Classification
from fathom.tasks.regression import Regression


def train(bundle, model, task, callbacks=(), epochs=3, seed=0):
    torch.manual_seed(seed)
    trainer = Trainer(
        model,
        task,
        TensorLoader(bundle.train, 16, shuffle=True, seed=0),
        TensorLoader(bundle.val, 64),
        train=TrainConfig(epochs=epochs, threads=1),
        optim=OptimConfig(name="adam", lr=0.01),
        callbacks=callbacks,
    )
    trainer.fit()
    return trainer


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 3)
    )


def test_records_layer_statistics_and_changes_nothing(blobs, tmp_path):
    diagnostics = Diagnostics(tmp_path, blobs, every=5)
    with_diagnostics = train(blobs, mlp(), Classification(3), [diagnostics])
    without = train(blobs, mlp(), Classification(3))
    for a, b in zip(with_diagnostics.model.parameters(), without.model.parameters(), strict=True):
        assert torch.equal(a, b)  # bitwise: hooks draw no random numbers and change no values
    kinds = [record["kind"] for record in diagnostics.records]
    assert kinds[0] == "run" and "sample" in kinds and kinds[-2:] == ["data", "examples"]
    sample = next(record for record in diagnostics.records if record["kind"] == "sample")
    layers = sample["layers"]
    assert list(layers)[:2] == ["0", "1"]  # execution order
    assert 0.0 <= layers["1"]["dead"] <= 1.0 and 0.0 <= layers["3"]["saturated"] <= 1.0
    assert layers["0"]["grad_norm"] > 0 and layers["0"]["update_ratio"] > 0
    assert (tmp_path / "diagnostics.jsonl").read_text().count("\n") == len(diagnostics.records)
    assert (tmp_path / "diagnosis.json").exists() and (tmp_path / "plots").is_dir()


def test_without_figures_the_diagnosis_is_saved_and_no_plot_drawn(blobs, tmp_path):
    """``run.report=false``: the doctor's verdict and report section, but no figures (which
    ``every`` would otherwise draw whatever they cost)."""
    train(blobs, mlp(), Classification(3), [Diagnostics(tmp_path, blobs, every=5, figures=False)])
    assert (tmp_path / "diagnosis.json").exists() and not list(tmp_path.glob("plots/*.png"))
    section = json.loads((tmp_path / "sections" / "diagnosis.json").read_text())
    assert section["images"] == [] and "fathom doctor RUN" in section["text"]


def test_dead_and_saturated_fractions_are_measured():
    relu_out = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    assert abs(float(activation_statistics(nn.ReLU(), relu_out)["dead"]) - 1 / 3) < 1e-6
    tanh_out = torch.tensor([[0.995, 0.0], [-0.999, 0.5]])
    assert float(activation_statistics(nn.Tanh(), tanh_out)["saturated"]) == 0.5


def test_samples_only_within_the_time_budget(monkeypatch):
    diagnostics = Diagnostics(None, None, budget=0.05)
    monkeypatch.setattr(diagnostics_module.time, "perf_counter", lambda: 100.0)
    diagnostics._clock = 0.0
    diagnostics.spent = 1.0  # 99 s trained: 3.5 s for samples; before any sample, one ~ a step
    assert not diagnostics.should_sample(0)  # never the first step of a fit
    assert diagnostics.should_sample(1)  # always the second
    diagnostics._last_sample = 1
    assert diagnostics.should_sample(50)
    diagnostics.spent = 2.0
    assert not diagnostics.should_sample(50)  # 2 s + one step of ~2 s would pass 3.5 s
    diagnostics.spent, diagnostics._last_sample, diagnostics._sample_cost = 1.0, 45, 0.01
    assert not diagnostics.should_sample(50)  # at least MIN_GAP steps apart
    assert diagnostics.should_sample(45 + diagnostics_module.MIN_GAP)
    diagnostics._clock = 80.0  # 19 s trained: 0.95 s in all, the figures cost about 1 s
    assert not diagnostics.room_for_figures()
    diagnostics._clock = -1000.0
    assert diagnostics.room_for_figures()


class TwoPhase(Task):
    """A GAN-like task: two networks, two optimizer phases per batch."""

    name = "two_phase"

    def optimizer_groups(self, model):
        return {"first": model[0].parameters(), "second": model[1].parameters()}

    def training_loss(self, phase, model, batch):
        inputs, _ = batch
        hidden = model[0](inputs)
        if phase == "first":
            return hidden.pow(2).mean(), {}
        return model[1](hidden.detach()).pow(2).mean(), {}

    def new_metrics(self, device):
        return Classification(3).new_metrics(device)

    def evaluation_step(self, model, batch, metrics):
        pass


def test_multi_phase_tasks_and_token_models_do_not_break(blobs):
    diagnostics = Diagnostics(None, blobs, every=2)
    two = nn.Sequential(nn.Sequential(nn.Linear(6, 8), nn.ReLU()), nn.Linear(8, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no diagnostic failed
        train(blobs, two, TwoPhase(), [diagnostics], epochs=1)
    assert any(record["kind"] == "sample" for record in diagnostics.records)

    tokens = torch.randint(0, 20, (64, 5))
    info = DataInfo("tokens", "regression", (5,))
    bundle = DataBundle(
        info,
        Split(tokens, tokens.float().mean(1, keepdim=True)),
        Split(tokens[:8], tokens[:8].float().mean(1, keepdim=True)),
    )
    model = nn.Sequential(nn.Embedding(20, 4), nn.Flatten(), nn.Linear(20, 1))
    diagnostics = Diagnostics(None, bundle, every=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(bundle, model, Regression(), [diagnostics], epochs=1)
    sample = next(record for record in diagnostics.records if record["kind"] == "sample")
    assert "0" in sample["layers"] and sample["layers"]["0"]["grad_norm"] is not None


def test_a_failing_diagnostic_is_a_warning_not_an_error(blobs, monkeypatch):
    diagnostics = Diagnostics(None, blobs, every=2)

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(diagnostics, "_finish_sample", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = train(blobs, mlp(), Classification(3), [diagnostics], epochs=1)
    assert trainer.state.epoch == 1
    assert any("diagnostics (sample) skipped: boom" in str(w.message) for w in caught)
