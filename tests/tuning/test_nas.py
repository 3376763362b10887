"""Architecture search: the convnet family, budgets, regularised evolution, and the CLI end to end."""

from __future__ import annotations

import json
import random

import pytest
import torch

import fathom
from fathom.cli.main import main
from fathom.errors import ConfigError
from fathom.tuning import measure
from fathom.tuning.nas import RegularizedEvolution, architecture_layer, family_space


@pytest.mark.parametrize("options", [
    {"widths": [8, 16], "depths": [1, 2], "expansion": 1, "norm": "batch", "skip": True},
    {"widths": [8, 8, 16], "depths": [2, 1, 1], "expansion": 4, "norm": "group", "activation": "leaky_relu"},
    {"widths": [4], "depths": [1], "kernel_size": 5, "norm": "none", "skip": False},
])  # fmt: skip
def test_convnet_family_builds_trains_and_measures(options):
    model = fathom.models.create("convnet", in_channels=1, num_classes=10, image_size=8, **options)
    outputs = model(torch.randn(2, 1, 8, 8))
    outputs.sum().backward()
    assert outputs.shape == (2, 10)
    assert measure.parameter_count(model) > 0 and measure.multiply_accumulates(model, (1, 8, 8)) > 0
    assert measure.latency_ms(model, (1, 8, 8), repeats=3) > 0


def test_convnet_refuses_bad_options():
    with pytest.raises(ConfigError, match="one entry per stage"):
        fathom.models.create("convnet", widths=[8, 16], depths=[1])
    with pytest.raises(ConfigError, match="unknown norm"):
        fathom.models.create("convnet", norm="layer")


def test_a_trial_becomes_the_family_model_options():
    params = {"arch.stages": 2, "arch.width_1": 8, "arch.depth_1": 1, "arch.width_2": 16,
              "arch.depth_2": 2, "arch.kernel_size": 3, "arch.expansion": 2,
              "arch.activation": "relu", "arch.norm": "batch", "arch.skip": True, "optim.lr": 0.01}  # fmt: skip
    layer = architecture_layer("cnn", params)
    assert layer["model"]["name"] == "convnet" and layer["model"]["widths"] == [8, 16]
    assert layer["optim"] == {"lr": 0.01}


def test_evolution_mutates_one_choice_and_drops_keys_it_disables():
    space = family_space("cnn")
    evolution = RegularizedEvolution(space, population=2, seed=0)
    parent = space.suggest(__import__("fathom.tuning.nas", fromlist=["FixedDraw"]).FixedDraw(
        {"arch.stages": 3, "arch.width_3": 32, "arch.depth_3": 2}))  # fmt: skip
    for seed in range(20):
        evolution.random = random.Random(seed)
        child = evolution.mutate(parent)
        changed = [key for key in parent if key in child and child[key] != parent[key]]
        assert len(changed) == 1
        if child["arch.stages"] == 2:
            assert "arch.width_3" not in child and "arch.depth_3" not in child


def test_nas_end_to_end_with_the_cli(tmp_path, capsys):
    argv = ["nas", "digits", "data.limit=240", "train.epochs=2", "train.diagnostics=false",
            "--trials", "4", "--population", "2", "--trial-epochs", "1", "--trial-steps", "1",
            "--budget-params", "200000", "--dir", str(tmp_path), "--study", "arch", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((tmp_path / "arch" / "study.json").read_text())
    assert len(record["trial_list"]) == 4
    for trial in record["trial_list"]:
        if trial["state"] == "complete":
            assert trial["parameters"] <= 200000 and trial["latency_ms"] > 0
    assert [t for t in record["trial_list"] if t["state"] == "complete"]
    trained = [fathom.runs.folder.read_run_json(path.parent)
               for path in (tmp_path / "arch" / "trials").glob("*/run.json")]  # fmt: skip
    assert trained and all(trial["steps"] == 1 for trial in trained)  # --trial-steps: a proxy
    assert not any(trial["test"] for trial in trained)  # judged on validation, test unseen
    winner = record["extra"]["winner"]
    run = fathom.load(winner["winner run"])  # the winner is a normal run of a registered model
    assert run.config.model.name == "convnet" and run.config.train.epochs == 2
    assert run.config.train.max_steps is None  # the winner trains fully
    assert run.evaluate("test")["accuracy"] > 0.1 and run.summary["test"]  # scored once re-trained
    page = (tmp_path / "arch" / "report.html").read_text()
    assert (
        "Chosen architecture" in page
        and (tmp_path / "arch" / "plots" / "accuracy_latency.png").is_file()
    )


def test_an_architecture_over_budget_is_pruned_before_training(tmp_path):
    result = fathom.nas("digits", trials=2, budget_params=10, trial_epochs=1, directory=tmp_path,
                        study="tight", overrides=["data.limit=240"], quiet=True, report=False)  # fmt: skip
    trials = result.record["trial_list"]
    assert [t["state"] for t in trials] == ["pruned", "pruned"]
    assert all(t["reason"].startswith("over budget: parameters") for t in trials)
    assert not list((tmp_path / "tight" / "trials").glob("*/model.safetensors"))
    assert not (tmp_path / "tight" / "report.html").exists()  # report=False
    assert result.record["extra"]["winner"] == {}


def test_an_unknown_family_or_strategy_is_exit_2(tmp_path, capsys):
    assert main(["nas", "digits", "--family", "cnnn", "--dir", str(tmp_path)]) == 2
    assert "did you mean 'cnn'" in capsys.readouterr().err
    assert main(["nas", "digits", "--strategy", "bayes", "--dir", str(tmp_path)]) == 2
