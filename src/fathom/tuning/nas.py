"""Architecture search: a family's search space, budgets, and regularised evolution.

A family is a registered model with options (``cnn`` → the ``convnet`` model): its space is an
ordinary ``SearchSpace`` over ``arch.*`` keys, so Optuna's samplers draw from it; the trial turns
the keys into the model's options. Strategies: random search with early stopping (Optuna's
random sampler and successive-halving pruner: Li and Talwalkar 2019), regularised evolution
(Real et al. 2019: below, proposing each child through ``study.enqueue_trial`` so its state is
the study itself, shared by every worker and kept across ``--resume``), and NSGA-II (Optuna's
sampler) on accuracy against latency. An architecture over the budget is pruned before training.
"""

from __future__ import annotations

import json
import random
from typing import Any

import optuna
from optuna.trial import TrialState
from torch import nn

from fathom.assemble import build_model, load_data
from fathom.config import FathomConfig
from fathom.errors import ConfigError, closest
from fathom.tuning.space import SearchSpace, nested, parse_space

WIDTHS = [8, 16, 24, 32, 48, 64]
FAMILY_SPACES: dict[str, dict[str, Any]] = {
    "cnn": {
        "arch.stages": {"choice": [2, 3]},
        "arch.width_1": {"choice": WIDTHS},
        "arch.depth_1": {"choice": [1, 2]},
        "arch.width_2": {"choice": WIDTHS},
        "arch.depth_2": {"choice": [1, 2, 3]},
        "arch.width_3": {"choice": WIDTHS, "when": {"arch.stages": 3}},
        "arch.depth_3": {"choice": [1, 2, 3], "when": {"arch.stages": 3}},
        "arch.kernel_size": {"choice": [3, 5]},
        "arch.expansion": {"choice": [1, 2, 4]},
        "arch.activation": {"choice": ["relu", "gelu", "leaky_relu"]},
        "arch.norm": {"choice": ["batch", "group", "none"]},
        "arch.skip": {"choice": [True, False]},
    }
}
FAMILY_MODELS = {"cnn": "convnet"}
STRATEGIES = ("random", "evolution", "nsga2")


def family_space(family: str) -> SearchSpace:
    if family not in FAMILY_SPACES:
        raise ConfigError(f"unknown architecture family '{family}'{closest(family, FAMILY_SPACES)}"
                          f"; choose from {', '.join(FAMILY_SPACES)}")  # fmt: skip
    return parse_space(FAMILY_SPACES[family])


def architecture_layer(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """The config layer of a trial's parameters: ``arch.*`` keys become the family model's
    options, other keys are config keys as in ``fathom tune``."""
    arch = {
        key.removeprefix("arch."): value for key, value in params.items() if key.startswith("arch.")
    }
    rest = {key: value for key, value in params.items() if not key.startswith("arch.")}
    stages = int(arch.get("stages", 2))
    model = {
        "name": FAMILY_MODELS[family],
        "widths": [arch[f"width_{stage}"] for stage in range(1, stages + 1)],
        "depths": [arch[f"depth_{stage}"] for stage in range(1, stages + 1)],
        **{key: arch[key] for key in ("kernel_size", "expansion", "activation", "norm", "skip")},
    }
    layer = nested(rest)
    layer["model"] = model
    return layer


_INFOS: dict[str, Any] = {}


def build_for_budget(config: FathomConfig) -> tuple[nn.Module, tuple[int, ...]]:
    """The trial's network (untrained) and its input shape, to measure before training."""
    key = json.dumps(config.data.model_dump(mode="json"), sort_keys=True)
    if key not in _INFOS:
        _INFOS[key] = load_data(config).info
    info = _INFOS[key]
    return build_model(config.model_copy(deep=True), info), tuple(info.input_shape)


class RegularizedEvolution:
    """Aging evolution: the population is the last ``population`` architectures trained; a child
    mutates one choice of the best of ``sample`` members drawn at random; before the population
    is full, children are random (the sampler's draw)."""

    def __init__(self, space: SearchSpace, population: int = 10, sample: int = 3, seed: int = 0):
        self.space = space
        self.population = population
        self.sample = sample
        self.random = random.Random(seed)

    def propose(self, study: optuna.Study) -> None:
        """Enqueue one child (nothing while the population fills or a retry is waiting)."""
        trials = study.get_trials(deepcopy=False)
        if any(trial.state == TrialState.WAITING for trial in trials):
            return
        members = [t for t in trials if t.state == TrialState.COMPLETE][-self.population :]
        if len(members) < self.population:
            return
        contenders = self.random.sample(members, min(self.sample, len(members)))
        maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        parent = (max if maximize else min)(contenders, key=lambda trial: trial.values[0])
        study.enqueue_trial(self.mutate(parent.params), user_attrs={"parent": parent.number})

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        """One active choice changed to another value; keys it deactivates are dropped (keys it
        activates are left to the sampler)."""
        mutable = [d for d in self.space.dimensions if d.key in params and len(d.values) > 1]
        dimension = self.random.choice(mutable)
        child = dict(params)
        child[dimension.key] = self.random.choice(
            [v for v in dimension.values if v != params[dimension.key]]
        )
        active = self.space.suggest(FixedDraw(child))
        return {key: value for key, value in child.items() if key in active}


class FixedDraw:
    """A stand-in for an Optuna trial that answers with given values (to find the active keys)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self.values.get(name, choices[0])

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return self.values.get(name, low)

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return self.values.get(name, low)


def choose_winner(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best metric among complete trials (a Pareto-front trial when there are costs): every
    complete trial is within budget, since over-budget ones were pruned before training."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        return None
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return (max if maximize else min)(complete, key=lambda trial: trial.values[0])
