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
from fathom.options import check_arguments
from fathom.yaml_reader import check_nesting, parse_yaml, read_yaml_file

# Strict types: ``true`` is not a number and ``2.5`` not an integer (an integer is a valid float);
# NaN and infinity are refused. Seeds fit every RNG; threads stay far below a system's limits.
STRICT = ConfigDict(validate_assignment=True, strict=True, allow_inf_nan=False)
MAX_SEED = 2**32 - 1  # numpy's limit
MAX_THREADS = 256
MAX_BATCH = 2**20


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", **STRICT)


class OpenSection(BaseModel):
    """A section whose extra keys are passed on to a component (dataset or model) and checked there."""

    model_config = ConfigDict(extra="allow", **STRICT)

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DataConfig(OpenSection):
    name: str = "digits"
    data_dir: str | None = None
    batch_size: int = Field(128, gt=0, le=MAX_BATCH)
    eval_batch_size: int | None = Field(None, gt=0, le=MAX_BATCH)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    limit: int | None = Field(None, gt=0)  # a seeded subset of the training split
    eval_limit: int | None = Field(None, gt=0)  # ... and of the validation and test splits
    normalize: bool = True
    download: bool = True
    augment: dict[str, Any] = Field(default_factory=dict)
    # few-label experiments: a seeded, class-balanced subset of the training labels
    labels_per_class: int | None = Field(None, gt=0)
    label_fraction: float | None = Field(None, gt=0.0, le=1.0)
    dedupe: bool = False  # drop validation/test rows that copy a training row (leakage)
    class_name_examples: int = Field(0, ge=0, le=10_000)  # text: class names as labelled rows


class ModelConfig(OpenSection):
    """``name``: a registered model, or ``auto`` (chosen from the data: a CNN for images, a
    Transformer encoder for token sequences, an MLP for tables and other vectors)."""

    name: str = "auto"
    init: str = "default"
    init_from: str | None = None  # a run folder or ``pretrained:NAME`` (fathom.transfer)


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
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    betas: Annotated[  # a YAML list is welcome; each beta is in [0, 1)
        tuple[Annotated[float, Field(ge=0.0, lt=1.0)], Annotated[float, Field(ge=0.0, lt=1.0)]],
        Field(strict=False),
    ] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    alpha: float = Field(0.99, gt=0.0, lt=1.0)
    fused: bool = False  # one fused kernel per step (sgd, adam, adamw): fastest on GPUs
    muon_lr: float = Field(0.02, gt=0.0)  # muon: hidden matrices (lr is the AdamW part's)
    muon_momentum: float = Field(0.95, ge=0.0, lt=1.0)
    # discriminative rates: parameter group i of n (stem first) trains at lr * layer_decay**(n-1-i)
    layer_decay: float | None = Field(None, gt=0.0, le=1.0)


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
    epochs: int = Field(10, gt=0, le=1_000_000)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    device: str = "auto"
    threads: int | None = Field(None, gt=0, le=MAX_THREADS)
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    compile: bool = False
    channels_last: bool = False
    # null: the model's default (recurrent models clip at 1.0); 0: no clipping
    grad_clip_norm: float | None = Field(None, ge=0.0)
    grad_clip_value: float | None = Field(None, ge=0.0)
    accumulate_steps: int = Field(1, gt=0, le=65536)
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
    strategy: Literal["ddp", "fsdp"] = "ddp"  # how several torchrun processes share the model


class TransferConfig(Section):
    """How a model started from ``model.init_from`` trains (fathom.transfer).

    ``mode``: ``full`` (everything trains), ``features`` (feature extraction: only the head
    trains), ``fine_tune`` (fastai: the head alone for ``freeze_epochs``, then everything),
    ``gradual`` (the head, then one more parameter group every ``unfreeze_every`` epochs, from
    the top down). ``frozen_groups``: group indices (0 = stem, -1 = head) that never train.
    ``bn_stats``: batch-norm running statistics ``auto`` (fixed in frozen groups), ``frozen``
    or ``update``. ``cache_features`` (mode features): compute the backbone's features once and
    train the head on them (no augmentation). ``contrastive_steps`` > 0: before training, tune
    the backbone that many steps on pairs of labelled examples (SetFit: same class pulled
    together, others apart; ``data.batch_size`` examples a step, all their pairs) at
    ``contrastive_lr``; it helps most with few labels (``data.labels_per_class``).
    """

    mode: Literal["full", "features", "fine_tune", "gradual"] = "full"
    freeze_epochs: int = Field(1, ge=0)
    unfreeze_every: int = Field(1, gt=0)
    frozen_groups: list[int] = Field(default_factory=list)
    bn_stats: Literal["auto", "frozen", "update"] = "auto"
    cache_features: bool = False
    contrastive_steps: int = Field(0, ge=0, le=1_000_000)
    contrastive_lr: float = Field(2e-5, gt=0, le=1.0)


class RunConfig(Section):
    dir: str = "runs"
    name: str | None = None
    progress: Literal["auto", "bar", "log", "none"] = "auto"
    card: bool = False  # classifiers: the trust report card (fathom card) as a report section
    report: bool = True  # report.html and its plots at the end (false: later, with fathom report)


class FathomConfig(Section):
    """The whole configuration of a training run."""

    recipe: str | None = None
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    transfer: TransferConfig = Field(default_factory=TransferConfig)
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


def merge_layer(
    base: Mapping[str, Any], layer: Mapping[str, Any], depth: int = 0, renames: bool = True
) -> dict[str, Any]:
    """``layer`` over ``base``, mapping by mapping. Below the sections an explicitly empty mapping
    replaces (``data.augment={}`` clears a recipe's augmentation); a section whose ``name`` changes
    starts afresh (``renames=False``: it merges, for two parts of one call's settings)."""
    merged = dict(base)
    for key, value in layer.items():
        old = merged.get(key)
        renamed = (
            renames
            and key in SECTIONS_REPLACED_ON_RENAME
            and isinstance(old, Mapping)
            and isinstance(value, Mapping)
            and "name" in value
            and value["name"] != old.get("name")
        )
        cleared = depth > 0 and isinstance(value, Mapping) and not value
        if isinstance(old, Mapping) and isinstance(value, Mapping) and not (renamed or cleared):
            merged[key] = merge_layer(old, value, depth + 1, renames)
        else:
            merged[key] = value
    return merged


def validate_config(raw: Mapping[str, Any]) -> FathomConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config must be a mapping of sections, got {type(raw).__name__}")
    check_nesting(raw, "config")
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
    value = read_yaml_file(path, "config file")
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
            value = parse_yaml(text, f"override '{key}'") if text != "" else ""
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
    """Call ``function(**kwargs)`` once every keyword is known and of the type (and in the range)
    its type hint gives; otherwise raise a one-line ConfigError with a suggestion."""
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
    required = [
        name
        for name, parameter in parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and name not in kwargs
    ]
    if required:
        raise ConfigError(f"'{where}' needs option '{required[0]}'")
    check_arguments(function, kwargs, where)
    return function(**kwargs)


def accepted_keywords(function: Callable[..., Any]) -> set[str]:
    """Names ``function`` accepts as keywords (every name if it takes ``**kwargs``)."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return {"*"} | set(parameters)
    return set(parameters)
