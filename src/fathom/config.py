"""Typed run configuration.

Defaults live here and with each component; a recipe, a YAML file and ``key=value`` overrides
are layered on top, in that order. Every mistake becomes one ``ConfigError`` line naming the key
path and, where one is close, the valid name the user probably meant.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from fathom import registry as fathom_registry
from fathom.errors import ConfigError, closest


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class OpenSection(BaseModel):
    """A section whose extra keys are passed on to a component (dataset or model) and checked there."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DataConfig(OpenSection):
    name: str = "digits"
    data_dir: str | None = None
    batch_size: int = Field(128, gt=0)
    eval_batch_size: int | None = Field(None, gt=0)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    limit: int | None = Field(None, gt=0)
    normalize: bool = True
    download: bool = True
    augment: dict[str, Any] = Field(default_factory=dict)


class ModelConfig(OpenSection):
    """``name``: a registered model, or ``auto`` (chosen from the data: a CNN for images, a
    Transformer encoder for token sequences, an MLP for tables and other vectors)."""

    name: str = "auto"
    init: str = "default"


class TaskConfig(OpenSection):
    """``name`` picks the task (``auto``: the dataset's own); other keys go to the task."""

    name: str = "auto"


def registered(registry_name: str) -> Any:
    """A field validator: the value must be a name in the registry ``registry_name``."""

    def check(value: str) -> str:
        registry = getattr(fathom_registry, registry_name)
        if value not in registry:
            raise ValueError(registry.unknown_message(value))
        return value

    return AfterValidator(check)


class OptimConfig(Section):
    name: Annotated[str, registered("OPTIMIZERS")] = "adamw"
    lr: Annotated[float, Field(gt=0.0)] | Literal["auto"] = 1e-3  # auto: the LR finder picks it
    weight_decay: float = Field(0.0, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    alpha: float = Field(0.99, gt=0.0, lt=1.0)
    fused: bool = False  # one fused kernel per step (sgd, adam, adamw): fastest on GPUs
    muon_lr: float = Field(0.02, gt=0.0)  # muon: hidden matrices (lr is the AdamW part's)
    muon_momentum: float = Field(0.95, ge=0.0, lt=1.0)


class ScheduleConfig(Section):
    name: Annotated[str, registered("SCHEDULES")] = "constant"
    warmup_epochs: float = Field(0.0, ge=0.0)
    step_epochs: float = Field(10.0, gt=0.0)
    gamma: float = Field(0.1, gt=0.0, le=1.0)
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)
    peak_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    start_ratio: float = Field(0.04, gt=0.0, le=1.0)


class EarlyStoppingConfig(Section):
    metric: str = "val_loss"
    patience: int = Field(5, gt=0)
    mode: Literal["auto", "min", "max"] = "auto"
    min_delta: float = Field(0.0, ge=0.0)


class TrainConfig(Section):
    epochs: int = Field(10, gt=0)
    seed: int = 0
    device: str = "auto"
    threads: int | None = Field(None, gt=0)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: bool = False
    channels_last: bool = False
    grad_clip_norm: float | None = Field(None, gt=0.0)
    grad_clip_value: float | None = Field(None, gt=0.0)
    accumulate_steps: int = Field(1, gt=0)
    l1: float = Field(0.0, ge=0.0)
    l2: float = Field(0.0, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    ema_decay: float | None = Field(None, gt=0.0, lt=1.0)
    early_stopping: EarlyStoppingConfig | None = None
    reuse_cpu_memory: bool = True
    checkpoint_every_steps: int = Field(0, ge=0)
    log_every_steps: int = Field(50, gt=0)
    max_steps: int | None = Field(None, gt=0)
    diagnostics: bool = True
    max_seconds: float | None = Field(None, gt=0.0)  # a wall-clock budget for training steps


class RunConfig(Section):
    dir: str = "runs"
    name: str | None = None
    progress: Literal["auto", "bar", "log", "none"] = "auto"
    card: bool = False  # classifiers: the trust report card (fathom card) as a report section


class FathomConfig(Section):
    """The whole configuration of a training run."""

    recipe: str | None = None
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


SECTIONS_REPLACED_ON_RENAME = ("model", "task", "optim", "schedule")


def build_config(*layers: Mapping[str, Any] | None) -> FathomConfig:
    """Merge config layers (later wins) and validate; a section whose ``name`` changes starts afresh."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            merged = merge_layer(merged, layer)
    return validate_config(merged)


def merge_layer(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in layer.items():
        old = merged.get(key)
        renamed = (
            key in SECTIONS_REPLACED_ON_RENAME
            and isinstance(old, Mapping)
            and isinstance(value, Mapping)
            and "name" in value
            and value["name"] != old.get("name")
        )
        if isinstance(old, Mapping) and isinstance(value, Mapping) and not renamed:
            merged[key] = merge_layer(old, value)
        else:
            merged[key] = value
    return merged


def validate_config(raw: Mapping[str, Any]) -> FathomConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config must be a mapping of sections, got {type(raw).__name__}")
    try:
        return FathomConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, FathomConfig)) from None


def describe_validation_error(error: ValidationError, root: type[BaseModel]) -> str:
    """One line for the first problem: the dotted key path, what is wrong, and a suggestion."""
    first = error.errors()[0]
    # union members appear in the location as tags ("constrained-float", "literal['auto']")
    path = ".".join(str(p) for p in first["loc"] if not any(c in str(p) for c in "-[("))
    if first["type"] == "extra_forbidden":
        return f"unknown config key '{path}'{closest_key(first['loc'], root)}"
    if first["type"] == "value_error":  # our own validators' messages, as written
        return f"config key '{path}': {first['ctx']['error']}"
    given = first.get("input")
    shown = "" if isinstance(given, Mapping) else f", got {given!r}"
    return f"config key '{path}': {first['msg'].lower()}{shown}"


def closest_key(location: tuple[Any, ...], root: type[BaseModel]) -> str:
    model: Any = root
    for part in location[:-1]:
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return ""
        model = _model_of(field.annotation)
    names = list(getattr(model, "model_fields", {}))
    hint = closest(str(location[-1]), names)
    if not hint:
        return ""
    prefix = ".".join(str(p) for p in location[:-1])
    return hint.replace("'", f"'{prefix}.", 1) if prefix else hint


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        if isinstance(argument, type) and issubclass(argument, BaseModel):
            return argument
    return None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file; a missing file or bad YAML is a one-line ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}{where}: not valid YAML ({getattr(error, 'problem', error)})"
        ) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["train.epochs=3", "optim.lr=1e-3"]`` into a nested dict; values are parsed as YAML."""
    result: dict[str, Any] = {}
    for item in items:
        key, separator, text = item.partition("=")
        if not separator or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override '{item}' must look like section.key=value")
        try:
            value = yaml.safe_load(text) if text != "" else ""
        except yaml.YAMLError:
            value = text
        if isinstance(value, str) and _looks_like_float(value):
            value = float(value)
        node = result
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(
                    f"override '{item}' conflicts with an earlier override of '{part}'"
                )
        node[leaf] = value
    return result


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in {"nan", "inf", "-inf", "infinity"}


def call_with_checked_kwargs(
    function: Callable[..., Any], kwargs: Mapping[str, Any], where: str
) -> Any:
    """Call ``function(**kwargs)``, turning an unknown keyword into a ConfigError with a suggestion."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return function(**kwargs)
    parameters = signature.parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if not accepts_any:
        for key in kwargs:
            if key not in parameters:
                raise ConfigError(f"'{where}' has no option '{key}'{closest(key, parameters)}")
    return function(**kwargs)


def accepted_keywords(function: Callable[..., Any]) -> set[str]:
    """Names ``function`` accepts as keywords (every name if it takes ``**kwargs``)."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return {"*"} | set(parameters)
    return set(parameters)
