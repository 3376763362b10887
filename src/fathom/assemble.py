"""Config → data, model, task and trainer, in memory. Nothing here writes a file.

``resolve_config`` layers recipe ← config ← keyword shortcuts ← dotted overrides; ``prepare``
turns a resolved config into data and a network; ``build_trainer`` wires the trainer with its
loaders, features and callbacks. The API (``fathom.api``) adds the run folder around these.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fathom import data as fathom_data
from fathom import models, recipes, tasks
from fathom.config import (
    FathomConfig,
    accepted_keywords,
    build_config,
    load_yaml,
    merge_layer,
    parse_overrides,
)
from fathom.data.bundle import DataBundle, DataInfo
from fathom.data.loader import make_loader
from fathom.engine import Callback, Checkpointer, EarlyStopping, Trainer
from fathom.engine.distributed import check_processes, current_execution, is_main_process
from fathom.engine.features import resolve_device
from fathom.engine.log import MetricsLog
from fathom.engine.progress import make_progress
from fathom.errors import ConfigError, closest
from fathom.registry import TASKS

SHORTCUTS = {
    "epochs": "train.epochs",
    "seed": "train.seed",
    "device": "train.device",
    "lr": "optim.lr",
    "optimizer": "optim.name",
    "weight_decay": "optim.weight_decay",
    "schedule": "schedule.name",
    "batch_size": "data.batch_size",
    "run_dir": "run.dir",
    "name": "run.name",
    "progress": "run.progress",
}
"""Keyword arguments of ``fathom.fit`` and the config keys they set."""

ConfigSource = FathomConfig | Mapping[str, Any] | str | Path | None


def resolve_config(
    config: ConfigSource = None,
    *,
    dataset: str | None = None,
    overrides: Iterable[str] = (),
    use_recipe: bool = True,
    **shortcuts: Any,
) -> FathomConfig:
    """Layer recipe ← config (file, dict or object) ← keyword shortcuts ← dotted overrides."""
    user = as_layer(config)
    shortcut_layer: dict[str, Any] = {}
    for key, value in shortcuts.items():
        if key not in SHORTCUTS:
            raise ConfigError(f"unknown option '{key}'{closest(key, SHORTCUTS)}")
        section, leaf = SHORTCUTS[key].split(".")
        shortcut_layer.setdefault(section, {})[leaf] = (
            str(value) if isinstance(value, Path) else value
        )
    # Keyword shortcuts and overrides are one call's settings: fit(lr=0.5, overrides=
    # ["optim.name=sgd"]) keeps its lr, where a renamed section drops what earlier layers set.
    call_layer = merge_layer(shortcut_layer, parse_overrides(list(overrides)), renames=False)
    dataset_layer = {"data": {"name": dataset}} if dataset else {}
    layers = [dataset_layer, user, call_layer]
    probe = build_config(*layers)
    recipe_name = probe.recipe or (
        recipes.recipe_for_dataset(probe.data.name, probe.task.name) if use_recipe else None
    )
    recipe_layer = recipes.get(recipe_name) if recipe_name else {}
    return build_config(recipe_layer, *layers)


def as_layer(config: ConfigSource) -> dict[str, Any]:
    """A config given as an object, a mapping or a YAML file, as a plain mapping."""
    if isinstance(config, FathomConfig):
        return config.to_dict()
    if isinstance(config, (str, Path)):
        return load_yaml(config)
    return dict(config or {})


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_data(config: FathomConfig) -> DataBundle:
    """The dataset of ``config.data``, split with the run's seed."""
    section = config.data
    return fathom_data.load(
        section.name,
        data_dir=section.data_dir,
        val_fraction=section.val_fraction,
        test_fraction=section.test_fraction,
        seed=config.train.seed,
        normalize=section.normalize,
        limit=section.limit,
        eval_limit=section.eval_limit,
        download=section.download,
        labels_per_class=section.labels_per_class,
        label_fraction=section.label_fraction,
        dedupe=section.dedupe,
        class_name_examples=section.class_name_examples,
        **section.options(),
    )


def make_task(config: FathomConfig, info: DataInfo) -> tasks.Task:
    """The task named by ``task.name`` (``auto``: the dataset's), with ``task.*`` options."""
    name = info.task if config.task.name == "auto" else config.task.name
    options = config.task.options()
    if "label_smoothing" in accepted_keywords(TASKS.get(name).for_data):
        options.setdefault("label_smoothing", config.train.label_smoothing)  # predates task.*
    return tasks.create_for_data(name, info, **options)


def model_for_data(info: DataInfo) -> str:
    """``model.name: auto``: a CNN for images, a Transformer encoder for token sequences, else
    an MLP (tables and other vectors)."""
    if len(info.input_shape) == 3:
        return "cnn"
    if "vocab_size" in info.extra or "tokenizer" in info.extra:
        return "transformer_encoder"
    return "mlp"


def build_model(config: FathomConfig, info: DataInfo) -> nn.Module:
    """The network of ``config.model`` sized for the data, seeded by ``train.seed``."""
    if config.model.name == "auto":
        config.model.name = model_for_data(info)
    seed_everything(config.train.seed)
    return models.create_for_data(
        config.model.name, info, init=config.model.init, **config.model.options()
    )


def evaluation_batch_size(config: FathomConfig) -> int:
    """``data.eval_batch_size``, else the training batch size but at least 512."""
    return config.data.eval_batch_size or max(config.data.batch_size, 512)


def build_trainer(
    config: FathomConfig,
    model: nn.Module,
    bundle: DataBundle,
    run_dir: Path | None,
    callbacks: Iterable[Callback] = (),
    task: tasks.Task | None = None,
) -> Trainer:
    """A Trainer wired with loaders, augmentation, checkpoints, early stopping and progress.

    ``task``: a task built by the caller (one holding a model, e.g. distillation's teacher),
    instead of the one the config names."""
    train = config.train
    # Recurrent models clip gradients by default (model.default_grad_clip_norm).
    default_clip = getattr(model, "default_grad_clip_norm", None)
    if default_clip and train.grad_clip_norm is None and train.grad_clip_value is None:
        train = train.model_copy(update={"grad_clip_norm": float(default_clip)})
    if train.threads:
        torch.set_num_threads(train.threads)
    execution = current_execution(train.strategy, train.device)
    device = execution.device(resolve_device(train.device))
    check_processes(config, execution.world_size)  # also for resume, which skips fit
    gathers = run_dir is not None and execution.shards_state and not execution.is_main
    if not execution.is_main:  # only the main process writes and shows progress
        run_dir = None
        config = config.model_copy(
            update={"run": config.run.model_copy(update={"progress": "none"})}
        )
    train_loader, val_loader = make_loaders(config, bundle, device)
    task = task if task is not None else make_task(config, bundle.info)
    return Trainer(
        model, task, train_loader, val_loader,
        train=train, optim=config.optim, schedule=config.schedule,
        callbacks=[*standard_callbacks(config, task, bundle, run_dir, gathers), *callbacks],
        log=MetricsLog(run_dir / "metrics.jsonl" if run_dir is not None else None), device=device,
        execution=execution,
    )  # fmt: skip


def make_loaders(config: FathomConfig, bundle: DataBundle, device: torch.device) -> tuple[Any, Any]:
    """The shuffled, augmented training loader and the validation loader (or None)."""
    augment = None
    if config.data.augment:
        from fathom.data.augment import build_augmentation

        augment = build_augmentation(config.data.augment, bundle.info.num_classes)
    train_loader = make_loader(
        bundle.train, config.data.batch_size, shuffle=True, seed=config.train.seed,
        device=device, transform=augment, channels_last=config.train.channels_last,
    )  # fmt: skip
    val_loader = None
    if bundle.val is not None:
        val_loader = make_loader(bundle.val, evaluation_batch_size(config), device=device)
    return train_loader, val_loader


def standard_callbacks(
    config: FathomConfig,
    task: tasks.Task,
    bundle: DataBundle,
    run_dir: Path | None,
    gathers: bool = False,
) -> list[Callback]:
    """Checkpoints (with a run folder), early stopping, progress, the task's own, diagnostics.

    ``gathers``: a rank without a run folder that joins each checkpoint's gather (FSDP)."""
    train = config.train
    chosen: list[Callback] = []
    if run_dir is not None or gathers:
        directory = run_dir / "checkpoints" if run_dir is not None else None
        chosen.append(Checkpointer(directory, train.checkpoint_every_steps))
    if train.early_stopping is not None:
        stop = train.early_stopping
        chosen.append(EarlyStopping(stop.metric, stop.patience, stop.mode, stop.min_delta))
    progress = make_progress(config.run.progress)
    chosen += [progress] if progress else []
    chosen += task.callbacks(run_dir)
    if train.diagnostics:
        from fathom.diagnosis import Diagnostics

        chosen.append(Diagnostics(run_dir, bundle, figures=config.run.report))
    return chosen


def prepare(
    model: nn.Module | str | None,
    data: DataBundle | str | None,
    config: ConfigSource,
    overrides: Iterable[str],
    shortcuts: Mapping[str, Any],
) -> tuple[FathomConfig, DataBundle, nn.Module]:
    """The resolved config, the data and the network that ``fit`` (or the LR finder) uses."""
    dataset = (
        data
        if isinstance(data, str)
        else (data.info.name if isinstance(data, DataBundle) else None)
    )
    spec = getattr(model, "fathom_spec", None)  # set by fathom.models.create: rebuildable by name
    user = as_layer(config)
    if isinstance(model, nn.Module):
        user = merge_layer(user, {"model": spec or {"name": type(model).__name__}})
    elif model is not None:
        user = merge_layer(user, {"model": {"name": model}})
    resolved = resolve_config(
        user,
        dataset=dataset,
        overrides=overrides,
        use_recipe=model is None or isinstance(model, str),
        **shortcuts,
    )
    seed_everything(resolved.train.seed)
    bundle = data if isinstance(data, DataBundle) else load_data(resolved)
    chosen = chosen_keys(user, overrides, shortcuts)
    resolved, line = few_label_batch(resolved, len(bundle.train), chosen)
    if line and resolved.run.progress != "none" and is_main_process():
        print(line, file=sys.stderr)
    make_task(resolved, bundle.info).check_data(bundle)
    network = model if isinstance(model, nn.Module) else build_model(resolved, bundle.info)
    return resolved, bundle, network


FEW_LABEL_STEPS = 8
"""Optimizer steps an epoch, at least, in a few-label run whose batch size is the recipe's."""
LINEAR_SCALING = {"sgd"}
"""Optimizers whose learning rate scales linearly with the batch (Goyal et al. 2017); the
adaptive ones (Adam, AdamW, RMSprop, ...) scale by its square root (Malladi et al. 2022)."""


def few_label_batch(
    config: FathomConfig, examples: int, chosen: set[str]
) -> tuple[FathomConfig, str | None]:
    """A few-label run (``data.labels_per_class`` or ``data.label_fraction``) keeps the recipe's
    batch, tuned for the whole dataset, only when an epoch still has ``FEW_LABEL_STEPS`` steps;
    else the batch becomes the largest power of two that gives them (8 at least) and the
    learning rate follows it. Keys the caller set (``chosen``) are kept. Returns the config and
    the line that says what changed (None: nothing)."""
    data, optim = config.data, config.optim
    few = data.labels_per_class is not None or data.label_fraction is not None
    if not few or "data.batch_size" in chosen or examples >= FEW_LABEL_STEPS * data.batch_size:
        return config, None
    batch = max(8, 1 << (max(examples // FEW_LABEL_STEPS, 1).bit_length() - 1))
    if batch >= data.batch_size:
        return config, None
    updates: dict[str, Any] = {"data": data.model_copy(update={"batch_size": batch})}
    said = f"data.batch_size {data.batch_size} -> {batch}"
    if "optim.lr" not in chosen and not isinstance(optim.lr, str):  # "auto": the finder picks
        ratio = batch / data.batch_size
        lr = optim.lr * (ratio if optim.name in LINEAR_SCALING else ratio**0.5)
        updates["optim"] = optim.model_copy(update={"lr": lr})
        said += f", optim.lr {optim.lr:g} -> {lr:.3g}"
    line = (f"few labels: {examples} training examples, so {said} "
            f"(at least {FEW_LABEL_STEPS} steps an epoch; set data.batch_size to keep yours)")  # fmt: skip
    return config.model_copy(update=updates), line


def chosen_keys(
    user: Mapping[str, Any], overrides: Iterable[str], shortcuts: Mapping[str, Any]
) -> set[str]:
    """The dotted keys the caller set: in its config, its overrides or keyword shortcuts."""
    layer = merge_layer(dict(user), parse_overrides(list(overrides)), renames=False)
    keys = {f"{section}.{key}" for section, values in layer.items()
            if isinstance(values, Mapping) for key in values}  # fmt: skip
    return keys | {SHORTCUTS[name] for name in shortcuts if name in SHORTCUTS}
