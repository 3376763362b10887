"""Transfer learning: weights by name and shape, freezing, discriminative rates, unfreezing order,
fine-tuned runs that load and resume exactly, and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

import fathom
from fathom import models
from fathom.config import OptimConfig, TrainConfig, TransferConfig
from fathom.engine import Trainer
from fathom.engine.optim import build_optimizer
from fathom.errors import ConfigError
from fathom.nn.classifier import parameter_groups
from fathom.runs.folder import read_config, write_config
from fathom.tasks import create as create_task
from fathom.transfer import GroupFreezing, load_matching, unfreeze_epochs
from tests_support import make_blobs, predict_in_fresh_process

QUIET = {"progress": "none", "batch_size": 16}
FAST = ["train.diagnostics=false", "run.report=false"]


def small_mlp(width: int = 16, classes: int = 3) -> torch.nn.Module:
    return models.create("mlp", in_features=6, num_classes=classes, hidden=[width, width])


def test_weights_load_by_name_and_shape_with_a_one_line_report():
    source = small_mlp(width=16, classes=3)
    target = small_mlp(width=16, classes=2)  # same backbone, another head
    tensors = {**source.state_dict(), "extra.weight": torch.zeros(1)}
    report = load_matching(target, tensors)
    assert "head.weight" in report.mismatched and "extra.weight" in report.unused
    for name, tensor in target.state_dict().items():
        if name.startswith("features."):
            assert torch.equal(tensor, source.state_dict()[name])
    line = report.line("runs/src")
    assert "\n" not in line and "other shape: head.weight" in line and "extra.weight" in line


def test_frozen_parameters_do_not_change_after_a_step_while_the_head_does(blobs):
    model = small_mlp()
    starts = unfreeze_epochs(TransferConfig(mode="features"), len(parameter_groups(model)))
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    from fathom.data.loader import make_loader

    loader = make_loader(blobs.train, 16, shuffle=True, seed=0)
    task = create_task("classification", num_classes=3)
    trainer = Trainer(
        model, task, loader, train=TrainConfig(epochs=1, max_steps=1, diagnostics=False), callbacks=[GroupFreezing(starts)],
    )  # fmt: skip
    trainer.fit()
    for name, tensor in model.state_dict().items():
        changed = not torch.equal(tensor, before[name])
        assert changed == name.startswith("head."), name


def test_discriminative_rates_are_the_configured_ones_per_group():
    model = small_mlp()
    groups = parameter_groups(model)
    optimizer = build_optimizer(
        [p for g in groups for p in g], OptimConfig(lr=0.01, layer_decay=0.5), model
    )
    rates = [group["lr"] for group in optimizer.param_groups]
    last = len(groups) - 1
    assert rates == pytest.approx([0.01 * 0.5 ** (last - i) for i in range(len(groups))])
    assert [len(g["params"]) for g in optimizer.param_groups] == [len(g) for g in groups]


def test_gradual_unfreezing_unfreezes_from_the_head_down_in_order():
    model = small_mlp()
    count = len(parameter_groups(model))
    config = TransferConfig(mode="gradual", unfreeze_every=2)
    freezing = GroupFreezing(unfreeze_epochs(config, count))
    freezing.attach(model)
    seen = []
    for epoch in range(2 * count):
        freezing.apply(epoch)
        seen.append(list(freezing.trainable))
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        groups = parameter_groups(model)
        assert trainable == {id(p) for i in freezing.trainable for p in groups[i]}
    assert seen[0] == [count - 1] and seen[1] == [count - 1]
    assert seen[2] == [count - 2, count - 1]
    assert seen[-1] == list(range(count))
    fine_tune = unfreeze_epochs(TransferConfig(mode="fine_tune", freeze_epochs=3), count)
    assert fine_tune == [3] * (count - 1) + [0]


def test_an_unknown_group_index_is_one_config_error():
    with pytest.raises(ConfigError, match="no parameter group 9"):
        unfreeze_epochs(TransferConfig(frozen_groups=[9]), 3)
    assert unfreeze_epochs(TransferConfig(frozen_groups=[0, -1]), 3) == [None, 0, None]


@pytest.fixture
def source_run(tmp_path):
    return fathom.fit(
        "mlp", make_blobs(), epochs=2, run_dir=tmp_path, name="src", overrides=FAST, **QUIET
    )


def test_a_fine_tuned_run_loads_through_its_lineage_in_a_fresh_process(source_run, tmp_path):
    target = make_blobs(classes=2, seed=1)
    run = fathom.finetune(
        source_run.path, target, epochs=2, run_dir=tmp_path, name="ft", overrides=FAST, **QUIET
    )
    record = json.loads((run.path / "run.json").read_text())
    steps = [step["name"] for step in record["lineage"]["transforms"]]
    assert steps == ["init_from", "reset_head"]
    assert record["lineage"]["transforms"][0]["params"]["source"] == str(source_run.path)
    assert "loaded" in record["transfer"]["load_report"]
    inputs = target.test.inputs[:8]
    expected = run.predict(inputs)
    fresh = predict_in_fresh_process(run.path, inputs, tmp_path)
    assert torch.allclose(fresh, expected, atol=1e-6)


def test_resume_is_bitwise_exact_mid_fine_tune(source_run, tmp_path):
    target = make_blobs(classes=2, seed=1)
    options = {"epochs": 3, "run_dir": tmp_path, **QUIET}
    layers = {"transfer": {"mode": "gradual"}, "optim": {"layer_decay": 0.5}}
    full = fathom.finetune(
        source_run.path, target, config=layers, name="full", overrides=FAST, **options
    )
    partial = fathom.finetune(
        source_run.path, target, config=layers, name="partial", **options,
        overrides=[*FAST, "train.max_steps=17", "train.checkpoint_every_steps=5"],
    )  # fmt: skip
    extended = read_config(partial.path)
    extended.train.max_steps = None
    write_config(partial.path, extended)
    resumed = fathom.resume(partial.path, data=target, progress="none")
    for a, b in zip(
        full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_finetune_cli_end_to_end_and_bad_input_exits_2(tmp_path, monkeypatch, capsys):
    from fathom.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "digits", "train.max_steps=3", *FAST, "--name", "src", "--quiet"]) == 0
    rows = "\n".join(f"{i % 7},{i % 3},{i % 2}" for i in range(30))
    (tmp_path / "table.csv").write_text("a,b,y\n" + rows + "\n")
    capsys.readouterr()
    arguments = ["runs/src", "digits", "train.max_steps=3", "transfer.mode=features"]
    assert main(["finetune", *arguments, *FAST, "--name", "ft", "--quiet"]) == 0
    assert "init_from runs/src: loaded 16 of 16 tensors" in capsys.readouterr().out
    assert fathom.load(tmp_path / "runs" / "ft").config.transfer.mode == "features"
    for arguments, message in (
        (["runs/src", "digits", "transfer.frozen_groups=[9]"], "no parameter group 9"),
        (["pretrained:nope", "digits"], "unknown pretrained model 'nope'"),
        (["runs/missing", "digits"], "not a run folder"),
        (["runs/src", "table.csv", "data.target=y"], "trained on images, but 'csv' has vectors"),
    ):
        assert main(["finetune", *arguments, "train.max_steps=1", "--quiet"]) == 2
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ft", "src"]


def test_a_source_of_another_input_shape_is_refused(source_run, tmp_path):
    other = make_blobs(features=5)
    with pytest.raises(ConfigError, match=r"inputs of shape \[6\].*has \[5\]"):
        fathom.finetune(source_run.path, other, run_dir=tmp_path, **QUIET)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # nothing half-written


def test_labels_per_class_keeps_a_seeded_class_balanced_subset():
    from fathom.data.splits import few_labels

    targets = torch.arange(100) % 4
    chosen = few_labels(targets, 5, None, seed=0)
    assert torch.bincount(targets[chosen]).tolist() == [5, 5, 5, 5]
    assert torch.equal(chosen, few_labels(targets, 5, None, seed=0))
    assert not torch.equal(chosen, few_labels(targets, 5, None, seed=1))
    assert torch.bincount(targets[few_labels(targets, None, 0.2, seed=0)]).tolist() == [5] * 4
    bundle = fathom.data.load("digits", labels_per_class=3, seed=0)
    assert torch.bincount(bundle.train.targets).tolist() == [3] * 10
    assert len(bundle.test) == len(fathom.data.load("digits", seed=0).test)  # only train shrinks
    with pytest.raises(ConfigError, match="not both"):
        few_labels(targets, 5, 0.5, seed=0)
