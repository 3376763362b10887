"""Studies on the embedded digits with tiny budgets: samplers, pruning, failures, best.yaml,
resume, and several workers (SQLite, PostgreSQL, one killed mid-trial)."""

from __future__ import annotations

import json
import math

import optuna
import pytest
import yaml

import fathom
from fathom.api.tune import CachedDataFit, tune
from fathom.tuning.space import parse_space
from fathom.tuning.trial import Objective, PruningCallback, TrialPlan

TINY = ["data.limit=240", "train.epochs=2", "train.diagnostics=false", "data.batch_size=64",
        "model.channels=[4,8]"]  # fmt: skip
SPACE = {"optim.lr": {"log_uniform": [1e-3, 3e-2]}, "model.hidden": {"choice": [16, 32]}}
GRID = {"optim.lr": {"choice": [0.003, 0.01]}, "model.hidden": {"choice": [16, 32, 64]}}


def states(result) -> list[str]:
    return [trial["state"] for trial in result.record["trial_list"]]


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid", "gp", "cmaes"])
def test_a_six_trial_study_with_each_sampler(tmp_path, sampler):
    space = GRID if sampler == "grid" else SPACE
    result = tune("digits", space, overrides=TINY, trials=6, sampler=sampler, pruner="none",
                  directory=tmp_path, study=sampler, quiet=True, report=False)  # fmt: skip
    assert states(result) == ["complete"] * 6
    assert result.best["values"][0] > 0.1 and result.best_config.is_file()
    record = json.loads((result.path / "study.json").read_text())
    assert record["sampler"] == sampler and record["plan"]["space"] == space
    kept = [t for t in record["trial_list"] if t["light"] is False]
    assert len(kept) == 3  # full runs for the top three, light records for the rest
    if sampler == "grid":  # the grid is walked without repeats
        assert len({tuple(t["params"].values()) for t in record["trial_list"]}) == 6


def test_a_multi_objective_study_with_nsga2_has_a_pareto_front(tmp_path):
    result = tune("digits", SPACE, overrides=TINY, trials=6, sampler="nsga2", costs=["parameters"],
                  directory=tmp_path, study="multi", quiet=True, report=True)  # fmt: skip
    assert states(result) == ["complete"] * 6
    assert all(len(t["values"]) == 2 for t in result.record["trial_list"])
    assert result.record["pareto_front"] or result.best
    assert (result.path / "plots" / "pareto.png").is_file()


class AlwaysPrune(optuna.pruners.BasePruner):
    """A test double: Optuna's decision is not under test here, the clean stop is."""

    def prune(self, study, trial) -> bool:
        return True


def one_trial_always_pruned(tmp_path, epochs: int) -> optuna.trial.FrozenTrial:
    """One digits trial of ``epochs`` epochs under a pruner that always says prune."""
    base = fathom.assemble.resolve_config(
        dataset="digits", overrides=[*TINY, f"train.epochs={epochs}"]
    )
    plan = TrialPlan(base=base.to_dict(), space=parse_space(SPACE), metric="accuracy",
                     direction="maximize", trials_dir=str(tmp_path / "trials"))  # fmt: skip
    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    study.optimize(Objective(plan, CachedDataFit()), n_trials=1)
    return study.trials[0]


def test_a_pruned_trial_stops_after_its_first_epoch(tmp_path):
    trial = one_trial_always_pruned(tmp_path, epochs=4)
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
    run = json.loads((tmp_path / "trials" / "trial-0000" / "run.json").read_text())
    assert run["epochs_completed"] == 1 and run["status"] == "completed"
    assert (
        json.loads((tmp_path / "trials" / "trial-0000" / "trial.json").read_text())["state"]
        == "pruned"
    )
    assert PruningCallback.order > 0


def test_a_trial_is_never_pruned_after_its_last_epoch(tmp_path):
    """Pruning there would save nothing and throw the finished trial's result away."""
    trial = one_trial_always_pruned(tmp_path, epochs=1)
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert list(trial.intermediate_values) == [1]


def test_a_diverging_trial_is_recorded_as_failed_and_the_study_goes_on(tmp_path):
    space = {"optim.lr": {"choice": [1.0e6, 0.01]}, "optim.name": {"choice": ["sgd"]}}
    result = tune("digits", space, overrides=TINY, trials=2, sampler="grid", directory=tmp_path,
                  study="nan", quiet=True)  # fmt: skip
    by_lr = {t["params"]["optim.lr"]: t for t in result.record["trial_list"]}
    assert by_lr[1.0e6]["state"] == "fail" and "diverged" in by_lr[1.0e6]["reason"]
    assert by_lr[0.01]["state"] == "complete" and result.best["params"]["optim.lr"] == 0.01


def test_best_yaml_reproduces_the_best_trial(tmp_path):
    result = tune("digits", SPACE, overrides=TINY, trials=3, sampler="random", pruner="none",
                  directory=tmp_path, study="best", quiet=True, report=False)  # fmt: skip
    best_run = json.loads((tmp_path / "best" / "trials" / f"trial-{result.best['number']:04d}" /
                           "run.json").read_text())  # fmt: skip
    config = yaml.safe_load(result.best_config.read_text())
    assert config["optim"]["lr"] == result.best["params"]["optim.lr"]
    again = fathom.fit(config=result.best_config, run_dir=str(tmp_path / "again"), progress="none",
                       report=False)  # fmt: skip
    assert again.summary["best"]["value"] == result.best["values"][0]
    assert again.summary["test"]["accuracy"] == best_run["test"]["accuracy"]


def test_the_pruning_study_end_to_end_with_the_cli(tmp_path, capsys):
    from fathom.cli.main import main

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    argv = ["tune", "digits", *TINY, "--space", str(space), "--trials", "4", "--pruner",
            "hyperband", "--dir", str(tmp_path), "--study", "cli"]  # fmt: skip
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(lines) == 4 and lines[-1].startswith("[4/4] trial")
    for plot in ("history", "importances", "parallel", "slice", "contour"):
        assert (tmp_path / "cli" / "plots" / f"{plot}.png").is_file()
    assert "Study cli" in (tmp_path / "cli" / "report.html").read_text()
    assert main(["tune", "--resume", str(tmp_path / "cli"), "--trials", "5", "--quiet"]) == 0
    record = json.loads((tmp_path / "cli" / "study.json").read_text())
    assert len(record["trial_list"]) == 5 and record["status"] == "finished"
    assert all(math.isfinite(t["values"][0]) for t in record["trial_list"] if t["values"])
