"""The LR finder: a sensible suggestion, and nothing it touched is left changed."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import fathom
from fathom.cli import main
from fathom.config import OptimConfig, TrainConfig
from fathom.data.loader import TensorLoader
from fathom.diagnosis.lr_finder import find_lr, plot_lr_finder
from fathom.engine import Trainer
from fathom.errors import ConfigError
from fathom.tasks.classification import Classification


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only contend on a busy machine
    yield
    torch.set_num_threads(threads)


def test_sweep_restores_model_optimizer_loader_and_rng(blobs, tmp_path, one_thread):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3)
    )
    loader = TensorLoader(blobs.train, 16, shuffle=True, seed=0)
    trainer = Trainer(
        model,
        Classification(3),
        loader,
        train=TrainConfig(epochs=1),
        optim=OptimConfig(name="adam", lr=0.01),
    )
    before = {key: value.clone() for key, value in model.state_dict().items()}
    optimizer_before = json.dumps(trainer.optimizers["main"].state_dict()["param_groups"])
    loader_before = loader.state_dict()
    rng = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    result = find_lr(trainer, steps=60)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # bitwise unchanged, BN statistics included
    assert json.dumps(trainer.optimizers["main"].state_dict()["param_groups"]) == optimizer_before
    assert not trainer.optimizers["main"].state  # no Adam moments left behind
    assert loader.state_dict() == loader_before
    assert torch.equal(torch.get_rng_state(), rng[0]) and (np.random.get_state()[1] == rng[1]).all()
    assert random.getstate() == rng[2]
    assert 1e-5 < result.suggestion < 1.0 and result.suggestion == result.minimum / 10
    assert result.smoothed[0] > min(result.smoothed)  # the sweep found a falling loss
    assert plot_lr_finder(result, tmp_path / "lr.png").stat().st_size > 1000


def test_multi_optimizer_tasks_are_refused(blobs):
    class TwoPhase(Classification):
        def optimizer_groups(self, model):
            return {"a": model[0].parameters(), "b": model[1].parameters()}

    model = nn.Sequential(nn.Linear(6, 3), nn.Linear(3, 3))
    trainer = Trainer(
        model, TwoPhase(3), TensorLoader(blobs.train, 16), train=TrainConfig(epochs=1)
    )
    with pytest.raises(ConfigError, match="single-optimizer"):
        find_lr(trainer)


def test_muon_with_its_two_learning_rates_is_refused(blobs):
    model = nn.Sequential(nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 3))
    trainer = Trainer(
        model, Classification(3), TensorLoader(blobs.train, 16), train=TrainConfig(epochs=1),
        optim=OptimConfig(name="muon"),
    )  # fmt: skip
    with pytest.raises(ConfigError, match="muon_lr"):
        find_lr(trainer)


@pytest.mark.slow
def test_auto_learning_rate_in_fit_and_the_cli(tmp_path, capsys, one_thread):
    options = [
        "model.hidden=[32]",
        "train.epochs=1",
        "schedule.name=constant",
        "data.batch_size=64",
    ]
    run = fathom.fit(
        "mlp", "digits", lr="auto", overrides=options, run_dir=tmp_path, progress="none"
    )
    chosen = yaml.safe_load((run.path / "config.yaml").read_text())["optim"]["lr"]
    assert isinstance(chosen, float) and chosen == run.summary["lr_finder"]["suggestion"]
    assert (run.path / "plots" / "lr_finder.png").exists()
    records = [
        json.loads(line) for line in (run.path / "diagnostics.jsonl").read_text().splitlines()
    ]
    assert [r["lr_from_finder"] for r in records if r["kind"] == "run"] == [True]  # not re-advised
    assert (
        main(
            [
                "lr-find",
                "digits",
                "--model",
                "mlp",
                "--steps",
                "40",
                "--output",
                str(tmp_path / "f.png"),
                *options,
            ]
        )
        == 0
    )
    assert "suggested learning rate" in capsys.readouterr().out and (tmp_path / "f.png").exists()
    with pytest.raises(ConfigError, match="optim.lr"):
        fathom.assemble.resolve_config(overrides=["optim.lr=fast"])


def test_a_sweep_whose_loss_never_falls_suggests_nothing(tmp_path, monkeypatch, capsys):
    """An LSTM on sentiment sat at chance (0.693) for the whole sweep, then blew up: the minimum
    of the smoothed loss was noise at 3e-6, so optim.lr=auto trained at 3e-7. A flat sweep now
    says so: lr-find warns, optim.lr=auto refuses in one line and leaves no run folder."""
    from fathom.diagnosis import lr_finder

    rates = [1e-7 * 1.2**step for step in range(60)]
    flat = [0.6946, 0.6951, 0.6949, 0.6944, 0.6950] * 11 + [0.70, 0.72, 0.9, 1.5, 3.0]
    falling = [2.3 - 0.03 * step for step in range(55)] + [0.8, 0.9, 1.2, 2.0, 4.0]
    assert lr_finder.suggest(rates, flat, flat).flat
    assert not lr_finder.suggest(rates, falling, falling).flat
    monkeypatch.setattr(lr_finder, "find_lr", lambda *a, **k: lr_finder.suggest(rates, flat, flat))
    arguments = ["train", "digits", "--model", "mlp", "optim.lr=auto", f"run.dir={tmp_path}"]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "optim.lr=auto: the loss did not fall" in error
    assert not any(tmp_path.iterdir())
