"""The search space: config keys and the distribution each is drawn from.

A space file maps dotted config keys to one distribution each::

    optim.lr: {log_uniform: [1.0e-4, 1.0e-1]}
    optim.weight_decay: {uniform: [0.0, 0.01]}
    model.hidden: {choice: [64, 128, 256]}
    train.epochs: {int: [2, 10]}              # also {int: [8, 64], step: 8} or log: true
    optim.name: {choice: [sgd, adamw]}
    optim.momentum: {uniform: [0.8, 0.99], when: {optim.name: sgd}}

``when`` makes a key conditional: it is drawn only when the named choice key took that value (or
one of a list of values). Every mistake is one ``ConfigError`` line naming the file and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fathom.config import FathomConfig, accepted_keywords, build_config, merge_layer
from fathom.errors import ConfigError, closest
from fathom.registry import DATASETS, MODELS

KINDS = ("log_uniform", "uniform", "int", "choice")
OPTIONS = {"log_uniform": set(), "uniform": {"step"}, "int": {"step", "log"}, "choice": set()}


@dataclass(frozen=True)
class Dimension:
    """One searched key: its distribution, its bounds or choices, and its condition."""

    key: str
    kind: str
    values: tuple[Any, ...]
    step: float | None = None
    log: bool = False
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {self.kind: list(self.values)}
        if self.step is not None:
            spec["step"] = self.step
        if self.log and self.kind == "int":
            spec["log"] = True
        if self.when:
            spec["when"] = {key: list(values) for key, values in self.when.items()}
        return spec

    def representative(self) -> Any:
        """A value inside the distribution, used to check the key against the config."""
        return self.values[0]

    def grid_values(self) -> list[Any]:
        """Every value of a choice or a small integer range (the grid sampler's axis)."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            low, high = self.values
            values = list(range(low, high + 1, int(self.step or 1)))
            if len(values) <= 64:
                return values
        raise ConfigError(
            f"the grid sampler needs choice or small int keys; '{self.key}' is {self.kind} "
            f"(write it as {{choice: [...]}})"
        )


@dataclass(frozen=True)
class SearchSpace:
    """Searched keys in the order they are drawn (a condition's key before the keys it enables)."""

    dimensions: tuple[Dimension, ...]

    def to_dict(self) -> dict[str, Any]:
        return {dimension.key: dimension.to_dict() for dimension in self.dimensions}

    def keys(self) -> list[str]:
        return [dimension.key for dimension in self.dimensions]

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw one value per active key from an Optuna trial: ``{dotted key: value}``."""
        chosen: dict[str, Any] = {}
        for dimension in self.dimensions:
            if all(chosen.get(key, _MISSING) in values for key, values in dimension.when.items()):
                chosen[dimension.key] = suggest_one(trial, dimension)
        return chosen

    def grid(self) -> dict[str, list[Any]]:
        return {dimension.key: dimension.grid_values() for dimension in self.dimensions}


_MISSING = object()


def suggest_one(trial: Any, dimension: Dimension) -> Any:
    """One value of ``dimension`` drawn by ``trial`` (an ``optuna.Trial``)."""
    name, values = dimension.key, dimension.values
    if dimension.kind == "log_uniform":
        return trial.suggest_float(name, values[0], values[1], log=True)
    if dimension.kind == "uniform":
        return trial.suggest_float(name, values[0], values[1], step=dimension.step)
    if dimension.kind == "int":
        step = int(dimension.step or 1)
        return trial.suggest_int(name, values[0], values[1], step=step, log=dimension.log)
    return trial.suggest_categorical(name, list(values))


def read_space(path: str | Path) -> SearchSpace:
    """Parse a space file; a missing file, bad YAML or a bad spec is one ConfigError line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"search space file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid YAML ({getattr(error, 'problem', error)})") from None
    try:
        return parse_space(raw)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def parse_space(raw: Any) -> SearchSpace:
    """A mapping ``{dotted key: {kind: bounds or choices, ...}}`` as a ``SearchSpace``."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError("a search space maps dotted config keys to distributions, e.g. "
                          "'optim.lr: {log_uniform: [1e-4, 1e-1]}'")  # fmt: skip
    dimensions = [parse_dimension(str(key), spec) for key, spec in raw.items()]
    return SearchSpace(tuple(order_by_condition(dimensions)))


def parse_dimension(key: str, spec: Any) -> Dimension:
    if "." not in key or any(not part for part in key.split(".")):
        raise ConfigError(f"'{key}': a searched key is a dotted config key such as optim.lr")
    if not isinstance(spec, Mapping):
        raise ConfigError(f"'{key}': give a distribution such as {{choice: [1, 2]}}, got {spec!r}")
    kinds = [kind for kind in spec if kind in KINDS]
    if len(kinds) != 1:
        unknown = next(
            (str(name) for name in spec if name not in (*KINDS, "when", "step", "log")), ""
        )
        hint = closest(unknown, KINDS) if unknown else ""
        raise ConfigError(f"'{key}': give exactly one of {', '.join(KINDS)}{hint}")
    kind = kinds[0]
    extra = set(spec) - {kind, "when"} - OPTIONS[kind]
    if extra:
        raise ConfigError(f"'{key}': {kind} takes no option '{sorted(extra)[0]}'")
    values = check_values(key, kind, spec[kind])
    step = spec.get("step")
    if step is not None and (not isinstance(step, (int, float)) or step <= 0):
        raise ConfigError(f"'{key}': step must be a positive number, got {step!r}")
    return Dimension(key, kind, values, step, bool(spec.get("log", False)), parse_when(key, spec))


def check_values(key: str, kind: str, values: Any) -> tuple[Any, ...]:
    """Bounds ``[low, high]`` (low < high; both > 0 for log_uniform) or a non-empty choice list."""
    if kind == "choice":
        if not isinstance(values, list) or not values:
            raise ConfigError(f"'{key}': choice takes a non-empty list, got {values!r}")
        if any(isinstance(value, (dict, list)) for value in values):
            raise ConfigError(f"'{key}': choices must be numbers, strings, booleans or null")
        return tuple(values)
    numeric = int if kind == "int" else (int, float)
    if (
        not isinstance(values, list)
        or len(values) != 2
        or not all(isinstance(v, numeric) and not isinstance(v, bool) for v in values)
    ):
        what = "integers" if kind == "int" else "numbers"
        raise ConfigError(f"'{key}': {kind} takes [low, high] as two {what}, got {values!r}")
    low, high = values
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ConfigError(f"'{key}': {kind} needs low < high, got [{low}, {high}]")
    if kind == "log_uniform" and low <= 0:
        raise ConfigError(f"'{key}': log_uniform needs low > 0, got {low}")
    return (float(low), float(high)) if kind != "int" else (low, high)


def parse_when(key: str, spec: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    when = spec.get("when")
    if when is None:
        return {}
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(f"'{key}': when takes {{choice key: value or [values]}}, got {when!r}")
    return {
        str(parent): tuple(value if isinstance(value, list) else [value])
        for parent, value in when.items()
    }


def order_by_condition(dimensions: list[Dimension]) -> list[Dimension]:
    """Keys whose conditions are drawn first; a condition must name a choice key of the space."""
    by_key = {dimension.key: dimension for dimension in dimensions}
    for dimension in dimensions:
        for parent, values in dimension.when.items():
            source = by_key.get(parent)
            if source is None or source.kind != "choice":
                raise ConfigError(
                    f"'{dimension.key}': when names '{parent}', which must be a choice key of "
                    f"the space{closest(parent, by_key)}"
                )
            missing = [value for value in values if value not in source.values]
            if missing:
                raise ConfigError(
                    f"'{dimension.key}': when {parent}={missing[0]!r}, not one of {list(source.values)}"
                )
    ordered: list[Dimension] = []
    pending = list(dimensions)
    while pending:
        ready = [d for d in pending if all(p in {o.key for o in ordered} for p in d.when)]
        if not ready:
            raise ConfigError(f"'{pending[0].key}': its when conditions form a circle")
        ordered += ready
        pending = [d for d in pending if d not in ready]
    return ordered


def nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"optim.lr": 0.1}`` → ``{"optim": {"lr": 0.1}}``."""
    result: dict[str, Any] = {}
    for key, value in values.items():
        node = result
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return result


def check_keys(space: SearchSpace, base: FathomConfig) -> None:
    """Every key must be a config key: a typed field, or an option of the model or dataset."""
    model_choices = _choices(space, "model.name") or [base.model.name]
    data_choices = _choices(space, "data.name") or [base.data.name]
    for dimension in space.dimensions:
        section, *rest = dimension.key.split(".")
        if section == "model" and len(rest) == 1 and rest[0] not in ("name", "init"):
            _check_option(dimension.key, rest[0], MODELS, model_choices)
        elif (
            section == "data" and len(rest) == 1 and rest[0] not in FathomConfig().data.model_fields
        ):
            _check_option(dimension.key, rest[0], DATASETS, data_choices)
        elif section != "task":
            layer = nested({dimension.key: dimension.representative()})
            try:
                build_config(merge_layer(base.to_dict(), layer))
            except ConfigError as error:
                raise ConfigError(f"'{dimension.key}': {error}") from None


def _choices(space: SearchSpace, key: str) -> list[Any]:
    return next((list(d.values) for d in space.dimensions if d.key == key), [])


def _check_option(key: str, option: str, registry: Any, names: list[Any]) -> None:
    accepted: set[str] = set()
    for name in names:
        if str(name) in ("auto",) or str(name) not in registry:
            return  # chosen from the data, or unknown here: the trial's own build will say
        accepted |= accepted_keywords(registry.get(str(name)))
    if option not in accepted and "*" not in accepted:
        which = ", ".join(str(name) for name in names)
        raise ConfigError(
            f"unknown config key '{key}': {registry.kind} '{which}' has no option "
            f"'{option}'{closest(option, accepted)}"
        )
