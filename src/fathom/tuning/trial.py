"""One trial: draw a config from the space, train it as a normal Fathom run, report to Optuna.

The trial's run folder is ``<study>/trials/trial-NNNN`` (a full run: ``fathom eval/report`` and
``fathom.load`` work on it); ``trial.json`` beside it says what Optuna recorded: the parameters,
the objective values, the state and, for a failed or pruned trial, why. The pruning callback
reports the validation metric after every epoch and stops a pruned trial with ``StopTraining``,
so its run folder ends cleanly before Optuna marks it pruned.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna

from fathom.config import FathomConfig, build_config, merge_layer
from fathom.engine import Callback, StopTraining
from fathom.errors import FathomError
from fathom.files import atomic_write_json
from fathom.tuning import measure
from fathom.tuning.space import SearchSpace, nested, parse_space

COST_OBJECTIVES = ("latency_ms", "parameters", "macs")
"""Objectives minimised beside the metric in a multi-objective study."""

FitFunction = Callable[..., Any]
"""``fathom.fit``: ``fit(config=..., callbacks=[...]) -> Run`` (passed in by fathom.api.tune)."""


@dataclass
class TrialPlan:
    """What every worker needs to run a trial (kept in study.json)."""

    base: dict[str, Any]
    space: SearchSpace
    metric: str
    direction: str
    trials_dir: str
    costs: list[str] = field(default_factory=list)
    family: str | None = None  # architecture search: params are a family's options
    budget: dict[str, float | None] = field(default_factory=dict)  # None: measured, no limit

    @property
    def directions(self) -> list[str]:
        return [self.direction, *["minimize"] * len(self.costs)]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "space": self.space.to_dict()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrialPlan:
        return cls(**{**raw, "space": parse_space(raw["space"])})


class PruningCallback(Callback):
    """Report the validation metric to Optuna after every epoch; stop if Optuna prunes."""

    order = 50

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.pruned_after: int | None = None

    def evaluation_end(self, trainer: Any) -> None:
        value = trainer.last_evaluation.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return  # a diverged loss is caught by the trainer itself
        epoch = trainer.state.epoch
        self.trial.report(float(value), step=epoch)
        if epoch >= trainer.epochs:
            return  # the last epoch: training is paid for, so the trial completes and counts
        if self.trial.should_prune():
            self.pruned_after = epoch
            raise StopTraining(f"pruned by the study after epoch {epoch}")


def trial_config(plan: TrialPlan, params: dict[str, Any], number: int) -> FathomConfig:
    """The base config with the trial's values, its run folder under the study's trials/."""
    from fathom.tuning.nas import architecture_layer  # the family's options from the params

    layer = architecture_layer(plan.family, params) if plan.family else nested(params)
    run = {"dir": plan.trials_dir, "name": f"trial-{number:04d}", "progress": "none"}
    return build_config(merge_layer(plan.base, layer), {"run": run})


class Objective:
    """Optuna's objective: one trial = one Fathom run; returns the metric (and costs)."""

    def __init__(self, plan: TrialPlan, fit: FitFunction, worker: int = 0) -> None:
        self.plan = plan
        self.fit = fit
        self.worker = worker

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        plan = self.plan
        params = plan.space.suggest(trial)
        config = trial_config(plan, params, trial.number)
        folder = Path(plan.trials_dir) / f"trial-{trial.number:04d}"
        trial.set_user_attr("run", str(folder))
        trial.set_user_attr("worker", self.worker)
        record = {"number": trial.number, "params": params, "worker": self.worker}
        started = time.perf_counter()
        if plan.budget:
            check_budget(trial, plan, config, folder, record)
        pruning = PruningCallback(trial, plan.metric) if len(plan.directions) == 1 else None
        try:
            run = self.fit(config=config, callbacks=[pruning] if pruning else [])
        except FathomError as error:
            fail(trial, folder, record, str(error))
            raise
        record["seconds"] = round(time.perf_counter() - started, 3)
        value = objective_value(run, plan.metric)
        if value is None or not math.isfinite(value):
            reason = f"no finite {plan.metric} to optimise (got {value})"
            fail(trial, folder, record, reason)
            raise FathomError(reason)
        test = run.summary.get("test") or {}
        trial.set_user_attr("test", {k: v for k, v in test.items() if isinstance(v, float)})
        if pruning is not None and pruning.pruned_after is not None:
            write_trial(folder, {**record, "state": "pruned", "values": [value],
                                 "reason": f"pruned after epoch {pruning.pruned_after}"})  # fmt: skip
            raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_after}")
        values = [value, *cost_values(run, plan.costs, trial)]
        write_trial(folder, {**record, "state": "complete", "values": values, "test": test})
        return values[0] if len(values) == 1 else tuple(values)


def objective_value(run: Any, metric: str) -> float | None:
    """The best validation value of the run's monitored metric; for a run stopped before its
    first validation (a step-capped proxy trial), the validation metric measured now; the test
    value only where there is no validation split (a search must not choose on the test set)."""
    summary = run.summary
    best = summary.get("best") or {}
    if best.get("metric") == metric and best.get("value") is not None:
        return float(best["value"])
    if run.data is not None and run.data.val is not None:
        value = run.evaluate("val").get(metric)
        return float(value) if value is not None else None
    test = (summary.get("test") or {}).get(metric)
    return float(test) if test is not None else None


def cost_values(run: Any, costs: list[str], trial: optuna.Trial) -> list[float]:
    """Latency (ms), parameters or MACs of the model, also kept as user attributes."""
    values = []
    for cost in costs:
        if cost not in trial.user_attrs:  # measured before training when there is a budget
            trial.set_user_attr(cost, float(measure_cost(run.model, run.info.input_shape, cost)))
        values.append(float(trial.user_attrs[cost]))
    return values


def measure_cost(model: Any, input_shape: Any, cost: str) -> float:
    if cost == "latency_ms":
        return measure.latency_ms(model, input_shape)
    if cost == "macs":
        return float(measure.multiply_accumulates(model, input_shape))
    return float(measure.parameter_count(model))


def check_budget(
    trial: optuna.Trial, plan: TrialPlan, config: FathomConfig, folder: Path, record: dict
) -> None:
    """Prune (without training) an architecture over the parameter, MAC or latency budget."""
    from fathom.tuning.nas import build_for_budget

    model, input_shape = build_for_budget(config)
    for cost, limit in plan.budget.items():
        value = measure_cost(model, input_shape, cost)
        trial.set_user_attr(cost, value)
        if limit is not None and value > limit:
            reason = f"over budget: {cost} {value:.4g} > {limit:.4g}"
            trial.set_user_attr("over_budget", reason)
            write_trial(folder, {**record, "state": "pruned", "reason": reason})
            raise optuna.TrialPruned(reason)


def fail(trial: optuna.Trial, folder: Path, record: dict[str, Any], reason: str) -> None:
    """Record why a trial failed, in Optuna (user attribute) and in trial.json."""
    trial.set_user_attr("fail_reason", reason)
    write_trial(folder, {**record, "state": "failed", "reason": reason})


def write_trial(folder: Path, record: dict[str, Any]) -> None:
    atomic_write_json(folder / "trial.json", json.loads(json.dumps(record, default=str)))
