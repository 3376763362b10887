"""Search-space parsing: every distribution, conditional keys, bad specs and unknown keys."""

from __future__ import annotations

import optuna
import pytest

from fathom.assemble import resolve_config
from fathom.cli.main import main
from fathom.errors import ConfigError
from fathom.tuning.space import check_keys, parse_space, read_space

SPACE = {
    "optim.lr": {"log_uniform": [1e-4, 1e-1]},
    "optim.weight_decay": {"uniform": [0.0, 0.01]},
    "train.epochs": {"int": [2, 10], "step": 2},
    "model.hidden": {"choice": [64, 128, 256]},
    "optim.name": {"choice": ["sgd", "adamw"]},
    "optim.momentum": {"uniform": [0.8, 0.99], "when": {"optim.name": "sgd"}},
}


def draws(space, count=30):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = []
    for _ in range(count):
        trial = study.ask()
        values.append(space.suggest(trial))
        study.tell(trial, 0.0)
    return values


def test_every_distribution_draws_inside_its_bounds():
    for value in draws(parse_space(SPACE)):
        assert 1e-4 <= value["optim.lr"] <= 1e-1
        assert 0.0 <= value["optim.weight_decay"] <= 0.01
        assert value["train.epochs"] in (2, 4, 6, 8, 10)
        assert value["model.hidden"] in (64, 128, 256)


def test_a_conditional_key_is_drawn_only_when_its_choice_is_taken():
    values = draws(parse_space(SPACE), 40)
    assert all(("optim.momentum" in v) == (v["optim.name"] == "sgd") for v in values)
    assert {v["optim.name"] for v in values} == {"sgd", "adamw"}


def test_conditions_are_drawn_before_the_keys_they_enable():
    space = parse_space(
        {"a.b": {"uniform": [0, 1], "when": {"a.c": [1, 2]}}, "a.c": {"choice": [1, 2, 3]}}
    )
    assert space.keys() == ["a.c", "a.b"]


def test_grid_axes_come_from_choices_and_small_int_ranges():
    grid = parse_space(
        {"model.hidden": {"choice": [8, 16]}, "train.epochs": {"int": [1, 3]}}
    ).grid()
    assert grid == {"model.hidden": [8, 16], "train.epochs": [1, 2, 3]}
    with pytest.raises(ConfigError, match="grid sampler"):
        parse_space({"optim.lr": {"log_uniform": [1e-3, 1e-1]}}).grid()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"optim.lr": {"log_uniform": [0, 1]}}, "low > 0"),
        ({"optim.lr": {"uniform": [1, 1]}}, "low < high"),
        ({"optim.lr": {"uniform": [1]}}, "two numbers"),
        ({"train.epochs": {"int": [1.5, 3]}}, "two integers"),
        ({"model.hidden": {"choice": []}}, "non-empty list"),
        ({"optim.lr": {"log_unifrom": [1e-3, 1]}}, "did you mean 'log_uniform'"),
        ({"optim.lr": {"uniform": [0, 1], "choice": [1]}}, "exactly one"),
        ({"optim.lr": 0.1}, "give a distribution"),
        ({"lr": {"uniform": [0, 1]}}, "dotted config key"),
        ({"optim.lr": {"uniform": [0, 1], "when": {"optim.name": "sgd"}}}, "must be a choice key"),
        (
            {
                "optim.name": {"choice": ["sgd"]},
                "optim.lr": {"uniform": [0, 1], "when": {"optim.name": "adam"}},
            },
            "not one of",
        ),
        ({"train.epochs": {"int": [1, 3], "base": 2}}, "no option 'base'"),
        ([1, 2], "maps dotted config keys"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_space(spec)
    assert "\n" not in str(caught.value)


def test_unknown_config_keys_are_refused_with_a_suggestion():
    base = resolve_config(dataset="digits")
    with pytest.raises(ConfigError, match="did you mean 'optim.lr'"):
        check_keys(parse_space({"optim.lrr": {"uniform": [0.1, 1]}}), base)
    with pytest.raises(ConfigError, match="cnn.*'dropout'"):
        check_keys(parse_space({"model.droput": {"uniform": [0.0, 0.5]}}), base)
    with pytest.raises(ConfigError, match="train.epochs"):
        check_keys(parse_space({"train.epochs": {"choice": [0, 2]}}), base)
    check_keys(parse_space(SPACE), base)  # every key of a good space passes


def test_a_bad_space_file_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="not found"):
        read_space(missing)
    bad = tmp_path / "space.yaml"
    bad.write_text("optim.lrr: {log_uniform: [1.0e-4, 1.0e-1]}\n")
    status = main(["tune", "digits", "--space", str(bad), "--trials", "2", "--dir", str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1
    assert "space.yaml" in error and "did you mean 'optim.lr'" in error
    assert not (tmp_path / "digits").exists() and not list(tmp_path.glob("digits-*"))


def test_a_search_without_a_validation_split_is_refused(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {log_uniform: [1.0e-4, 1.0e-1]}\n")
    arguments = ["tune", "digits", "--space", str(space), "--dir", str(tmp_path)]
    assert main([*arguments, "data.val_fraction=0"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "needs a validation split" in error
    assert not list(tmp_path.glob("digits-*"))
