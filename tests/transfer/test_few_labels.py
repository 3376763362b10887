"""Few-label runs: a recipe's batch, tuned for the whole dataset, would leave an epoch one or two
steps; it is cut so an epoch has at least eight, the learning rate following it, unless the
caller chose the batch (measured: CIFAR-10 with 100 labels a class from scratch 34.8% -> 47.8%)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fathom.assemble import chosen_keys, few_label_batch, resolve_config
from fathom.cli import main


def cifar_config(*overrides: str):
    return resolve_config(dataset="cifar10", overrides=["data.labels_per_class=100", *overrides])


def test_the_recipe_batch_is_cut_to_eight_steps_an_epoch_and_sgd_scales_linearly() -> None:
    config = cifar_config()
    assert (config.data.batch_size, config.optim.name, config.optim.lr) == (512, "sgd", 0.75)
    changed, line = few_label_batch(config, 1000, set())
    assert changed.data.batch_size == 64  # 1000 / 8 = 125, down to a power of two
    assert changed.optim.lr == pytest.approx(0.75 * 64 / 512)
    assert "512 -> 64" in line and "set data.batch_size to keep yours" in line
    assert config.data.batch_size == 512  # the config given is not changed


def test_adaptive_optimizers_scale_by_the_square_root_and_tiny_sets_keep_eight() -> None:
    config = cifar_config("optim.name=adamw", "optim.lr=0.001")
    changed, _ = few_label_batch(config, 16, {"optim.name"})
    assert changed.data.batch_size == 8
    assert changed.optim.lr == pytest.approx(0.001 * (8 / 512) ** 0.5)


@pytest.mark.parametrize(
    ("chosen", "examples", "batch", "lr"),
    [
        ({"data.batch_size"}, 1000, 512, 0.75),  # the caller's batch is kept, and its rate
        ({"optim.lr"}, 1000, 64, 0.75),  # the caller's rate is kept
        (set(), 4096, 512, 0.75),  # eight steps an epoch already
    ],
)
def test_what_the_caller_chose_or_enough_steps_is_left(
    chosen: set[str], examples: int, batch: int, lr: float
) -> None:
    changed, _ = few_label_batch(cifar_config(), examples, chosen)
    assert (changed.data.batch_size, changed.optim.lr) == (batch, lr)


def test_runs_with_all_labels_are_never_changed() -> None:
    config = resolve_config(dataset="cifar10")
    assert few_label_batch(config, 100, set()) == (config, None)


def test_chosen_keys_are_those_of_the_config_overrides_and_shortcuts() -> None:
    keys = chosen_keys({"optim": {"lr": 0.1}}, ["data.batch_size=32"], {"epochs": 3})
    assert keys == {"optim.lr", "data.batch_size", "train.epochs"}


def test_a_few_label_run_records_the_batch_it_trained_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["train", "digits", "data.labels_per_class=10", "train.epochs=1",
                 "model.channels=[4]", "model.hidden=8", "--run-dir", str(tmp_path), "--name", "few"]  # fmt: skip
    assert main(arguments) == 0
    assert (
        "few labels: 100 training examples, so data.batch_size 64 -> 8" in capsys.readouterr().err
    )
    config = yaml.safe_load((tmp_path / "few" / "config.yaml").read_text())
    assert config["data"]["batch_size"] == 8
    assert config["optim"]["lr"] == pytest.approx(0.003 * (8 / 64) ** 0.5)
