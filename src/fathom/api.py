"""The Python API: ``fit``, ``resume``, and the pieces the CLI shares with it."""

from __future__ import annotations

import random
import shutil
import time
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
    build_config,
    load_yaml,
    merge_layer,
    parse_overrides,
)
from fathom.data.bundle import DataBundle, DataInfo, Split, check_labels
from fathom.data.loader import make_loader
from fathom.engine import Callback, Checkpointer, EarlyStopping, Trainer, load_checkpoint
from fathom.engine.features import resolve_device
from fathom.engine.log import MetricsLog
from fathom.engine.progress import make_progress
from fathom.errors import ConfigError, FathomError, closest
from fathom.run import (
    Run,
    git_revision,
    new_run_dir,
    read_config,
    read_run_json,
    save_weights,
    update_run_json,
    versions,
    write_config,
)

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


def resolve_config(
    config: FathomConfig | Mapping[str, Any] | str | Path | None = None,
    *,
    dataset: str | None = None,
    overrides: Iterable[str] = (),
    use_recipe: bool = True,
    **shortcuts: Any,
) -> FathomConfig:
    """Layer recipe ← config (file, dict or object) ← keyword shortcuts ← dotted overrides."""
    user = _as_layer(config)
    shortcut_layer: dict[str, Any] = {}
    for key, value in shortcuts.items():
        if key not in SHORTCUTS:
            raise ConfigError(f"unknown option '{key}'{closest(key, SHORTCUTS)}")
        section, leaf = SHORTCUTS[key].split(".")
        shortcut_layer.setdefault(section, {})[leaf] = (
            str(value) if isinstance(value, Path) else value
        )
    override_layer = parse_overrides(list(overrides))
    dataset_layer = {"data": {"name": dataset}} if dataset else {}
    layers = [dataset_layer, user, shortcut_layer, override_layer]
    probe = build_config(*layers)
    recipe_name = probe.recipe or (
        recipes.recipe_for_dataset(probe.data.name) if use_recipe else None
    )
    recipe_layer = recipes.get(recipe_name) if recipe_name else {}
    return build_config(recipe_layer, *layers)


def _as_layer(config: FathomConfig | Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
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
    section = config.data
    return fathom_data.load(
        section.name,
        data_dir=section.data_dir,
        val_fraction=section.val_fraction,
        test_fraction=section.test_fraction,
        seed=config.train.seed,
        normalize=section.normalize,
        limit=section.limit,
        download=section.download,
        **section.options(),
    )


def make_task(config: FathomConfig, info: DataInfo) -> tasks.Task:
    """The task named by ``task.name`` (``auto``: the dataset's), with ``task.*`` options."""
    name = info.task if config.task.name == "auto" else config.task.name
    options = config.task.options()
    if name == "classification":
        options.setdefault("label_smoothing", config.train.label_smoothing)
    return tasks.create_for_data(name, info, **options)


def build_model(config: FathomConfig, info: DataInfo) -> nn.Module:
    seed_everything(config.train.seed)
    return models.create_for_data(
        config.model.name, info, init=config.model.init, **config.model.options()
    )


def check_bundle(bundle: DataBundle) -> None:
    if bundle.info.task == "classification" and bundle.info.num_classes:
        for name, split in bundle.splits().items():
            if isinstance(split, Split):
                check_labels(
                    split.targets, bundle.info.num_classes, f"{bundle.info.name} {name} split"
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
) -> Trainer:
    """A Trainer wired with loaders, augmentation, checkpoints, early stopping and progress."""
    train = config.train
    # Recurrent models clip gradients by default (model.default_grad_clip_norm).
    default_clip = getattr(model, "default_grad_clip_norm", None)
    if default_clip and train.grad_clip_norm is None and train.grad_clip_value is None:
        train = train.model_copy(update={"grad_clip_norm": float(default_clip)})
    if train.threads:
        torch.set_num_threads(train.threads)
    device = resolve_device(train.device)
    augment = None
    if config.data.augment:
        from fathom.data.augment import build_augmentation

        augment = build_augmentation(config.data.augment, bundle.info.num_classes)
    batch = config.data.batch_size
    eval_batch = evaluation_batch_size(config)
    train_loader = make_loader(
        bundle.train,
        batch,
        shuffle=True,
        seed=train.seed,
        device=device,
        transform=augment,
        channels_last=train.channels_last,
    )
    val_loader = (
        make_loader(bundle.val, eval_batch, device=device) if bundle.val is not None else None
    )
    extra: list[Callback] = []
    if run_dir is not None:
        extra.append(Checkpointer(run_dir / "checkpoints", train.checkpoint_every_steps))
    if train.early_stopping is not None:
        stop = train.early_stopping
        extra.append(EarlyStopping(stop.metric, stop.patience, stop.mode, stop.min_delta))
    progress = make_progress(config.run.progress)
    extra += [progress] if progress else []
    log = MetricsLog(run_dir / "metrics.jsonl" if run_dir is not None else None)
    task = make_task(config, bundle.info)
    extra += task.callbacks(run_dir)
    if train.diagnostics:
        from fathom.diagnosis import Diagnostics

        extra.append(Diagnostics(run_dir, bundle))
    return Trainer(
        model, task, train_loader, val_loader,
        train=train, optim=config.optim, schedule=config.schedule,
        callbacks=[*extra, *callbacks], log=log, device=device,
    )  # fmt: skip


def prepare(
    model: nn.Module | str | None,
    data: DataBundle | str | None,
    config: FathomConfig | Mapping[str, Any] | str | Path | None,
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
    user = _as_layer(config)
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
    check_bundle(bundle)
    network = model if isinstance(model, nn.Module) else build_model(resolved, bundle.info)
    return resolved, bundle, network


def fit(
    model: nn.Module | str | None = None,
    data: DataBundle | str | None = None,
    *,
    config: FathomConfig | Mapping[str, Any] | str | Path | None = None,
    overrides: Iterable[str] = (),
    callbacks: Iterable[Callback] = (),
    **shortcuts: Any,
) -> Run:
    """Train a model and return its ``Run`` (folder, metrics, report, weights).

    ``model`` is a registered name or any ``nn.Module``; ``data`` a dataset name or a
    ``DataBundle``. Keyword shortcuts: epochs, lr, batch_size, optimizer, schedule, seed, ...
    """
    resolved, bundle, network = prepare(model, data, config, overrides, shortcuts)
    custom = isinstance(model, nn.Module) and getattr(model, "fathom_spec", None) is None
    run_dir = new_run_dir(resolved)
    if resolved.optim.lr == "auto":
        from fathom.inspection import choose_learning_rate

        choose_learning_rate(resolved, network, bundle, run_dir)
    write_config(run_dir, resolved)
    parameters = sum(p.numel() for p in network.parameters())
    update_run_json(
        run_dir, name=run_dir.name, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), status="running",
        versions=versions(), git=git_revision(), seed=resolved.train.seed, task=bundle.info.task,
        data=bundle.info.to_dict(), model={"name": resolved.model.name, "parameters": parameters, "registered": not custom},
    )  # fmt: skip
    seed_everything(resolved.train.seed)
    try:
        trainer = build_trainer(resolved, network, bundle, run_dir, callbacks)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # a run that never started leaves nothing
        raise
    return _train_and_finish(trainer, resolved, bundle, run_dir)


def resume(
    path: str | Path,
    model: nn.Module | None = None,
    callbacks: Iterable[Callback] = (),
    progress: str | None = None,
    data: DataBundle | None = None,
) -> Run:
    """Continue an interrupted run from its last checkpoint, exactly where it stopped.

    Pass ``model`` for a run of your own module and ``data`` for a run on a ``DataBundle`` you
    built yourself (registered datasets are reloaded from the config with the same seed).
    ``progress`` (auto, bar, log, none) overrides how the original run showed progress.
    """
    run_dir = Path(path)
    config = read_config(run_dir)
    if progress is not None:
        config.run.progress = progress
    record = read_run_json(run_dir)
    checkpoint = run_dir / "checkpoints" / "last.safetensors"
    if not checkpoint.exists():
        raise FathomError(
            f"{run_dir} has no checkpoint yet (it stopped before its first one); train it again"
        )
    tensors, saved = load_checkpoint(checkpoint)
    seed_everything(config.train.seed)
    bundle = data if data is not None else load_data(config)
    if model is None:
        if not record.get("model", {}).get("registered", True):
            raise ConfigError(
                f"{run_dir} used a custom model; resume it from Python: fathom.resume(path, model=MyModel())"
            )
        model = build_model(config, bundle.info)
    trainer = build_trainer(config, model, bundle, run_dir, callbacks)
    trainer.restore(tensors, saved)
    update_run_json(run_dir, status="running", resumed_from_step=trainer.state.step)
    return _train_and_finish(trainer, config, bundle, run_dir)


def _train_and_finish(
    trainer: Trainer, config: FathomConfig, bundle: DataBundle, run_dir: Path
) -> Run:
    started = time.perf_counter()
    previous = trainer.state.elapsed_seconds
    try:
        state = trainer.fit()
    except FathomError as error:
        _notify_failure(trainer, error)
        if trainer.state.step == 0 and not (run_dir / "checkpoints" / "last.safetensors").exists():
            shutil.rmtree(
                run_dir, ignore_errors=True
            )  # failed before the first step: leave nothing
        else:
            update_run_json(run_dir, status="failed", message=str(error))
        raise
    except KeyboardInterrupt:
        update_run_json(
            run_dir, status="stopped", message="interrupted; continue with 'fathom resume'"
        )
        raise
    state.elapsed_seconds = previous + time.perf_counter() - started
    final = trainer.ema.shadow if trainer.ema is not None else trainer.model
    save_weights(run_dir / "model.safetensors", final, config.model.name)
    run = Run(run_dir, config, bundle.info, final, bundle)
    evaluation = run.evaluate("test") if bundle.test is not None else {}
    best = {"metric": trainer.task.monitor, "value": state.best_metric, "epoch": state.best_epoch}
    update_run_json(
        run_dir, status="completed", message=state.stop_reason, duration_seconds=state.elapsed_seconds,
        epochs_completed=state.epoch, steps=state.step, device=str(trainer.device),
        best=best if state.best_metric is not None else None, test=evaluation,
    )  # fmt: skip
    _write_report_quietly(run_dir)
    return run


def _notify_failure(trainer: Trainer, error: FathomError) -> None:
    """Let callbacks that can explain a failure (the diagnostics) record what they know."""
    for callback in trainer.callbacks:
        if hasattr(callback, "training_failed"):
            callback.training_failed(trainer, error)


def _write_report_quietly(run_dir: Path) -> None:
    from fathom.report import write_report

    write_report(run_dir)
