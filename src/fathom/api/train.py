"""``fathom.fit`` and ``fathom.resume``: training runs with a run folder around them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from fathom.assemble import (
    ConfigSource,
    build_model,
    build_trainer,
    load_data,
    make_task,
    prepare,
    seed_everything,
)
from fathom.config import FathomConfig
from fathom.data.bundle import DataBundle
from fathom.engine import Callback, Trainer
from fathom.engine.checkpoint_files import checkpoint_from_bytes
from fathom.engine.distributed import check_processes, current_execution
from fathom.errors import ConfigError, FathomError
from fathom.runs import Run, lineage_of, replay
from fathom.runs.folder import (
    git_revision,
    new_run_dir,
    read_config,
    read_run_json,
    save_weights,
    update_run_json,
    versions,
    write_config,
)
from fathom.runs.lock import training_lock
from fathom.transfer.start import (
    starting_network,
    training_data,
    transfer_callbacks,
    with_source_layer,
)


def fit(
    model: nn.Module | str | None = None,
    data: DataBundle | str | None = None,
    *,
    config: ConfigSource = None,
    overrides: Iterable[str] = (),
    callbacks: Iterable[Callback] = (),
    report: bool = True,
    **shortcuts: Any,
) -> Run:
    """Train a model and return its ``Run`` (folder, metrics, report, weights).

    ``model`` is a registered name or any ``nn.Module``; ``data`` a dataset name or a
    ``DataBundle``. Keyword shortcuts: epochs, lr, batch_size, optimizer, schedule, seed, ...
    ``report=False`` (or ``run.report=false``) leaves report.html for later (``fathom report``; a
    search writes it for its best trials only).
    """
    config = with_source_layer(config, overrides)  # model.init_from: the source's model
    resolved, bundle, network = prepare(model, data, config, overrides, shortcuts)
    network, transfer = starting_network(resolved, bundle, network, resolved.run.progress == "none")
    execution = current_execution(resolved.train.strategy, resolved.train.device)
    check_processes(resolved, execution.world_size)
    # Only the main process makes the folder; the others learn its path and write nothing.
    run_dir = Path(execution.broadcast(str(new_run_dir(resolved)) if execution.is_main else None))
    with training_lock(run_dir, execution):
        try:
            trainer = start_training(resolved, bundle, network, transfer, run_dir, callbacks)
        except BaseException:
            if execution.is_main:  # a run that never started leaves nothing
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        return train_and_finish(trainer, resolved, bundle, run_dir, report)


def start_training(
    resolved: FathomConfig,
    bundle: DataBundle,
    network: nn.Module,
    transfer: dict[str, Any] | None,
    run_dir: Path,
    callbacks: Iterable[Callback],
) -> Trainer:
    """The new run's record written and its trainer built (the learning rate found first
    under ``optim.lr=auto``)."""
    execution = current_execution(resolved.train.strategy, resolved.train.device)
    if resolved.optim.lr == "auto":
        from fathom.api.inspection import choose_learning_rate

        choose_learning_rate(resolved, network, bundle, run_dir)
    if execution.is_main:
        start_run_record(run_dir, resolved, bundle, network)
    seed_everything(resolved.train.seed)
    trained_on, data_for_trainer, swaps, tuned = training_data(resolved, network, bundle)
    if execution.is_main and (transfer is not None or tuned):
        update_run_json(run_dir, transfer={**(transfer or {}), **tuned})
    callbacks = [*swaps, *transfer_callbacks(resolved, network), *callbacks]
    return build_trainer(trained_on, network, data_for_trainer, run_dir, callbacks)


def start_run_record(
    run_dir: Path, config: FathomConfig, bundle: DataBundle, network: nn.Module
) -> None:
    """config.yaml and the first run.json: versions, seed, data facts, the model's lineage."""
    write_config(run_dir, config)
    lineage = lineage_of(network)
    parameters = sum(p.numel() for p in network.parameters())
    model = {"name": config.model.name, "parameters": parameters, "registered": lineage is not None}
    classifier = make_task(config, bundle.info).is_classifier
    task = bundle.info.task if config.task.name == "auto" else config.task.name  # e.g. simclr
    update_run_json(
        run_dir, name=run_dir.name, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), status="running",
        versions=versions(), git=git_revision(), seed=config.train.seed, task=task,
        classifier=classifier, data=bundle.info.to_dict(), model=model, lineage=lineage,
    )  # fmt: skip


def resume(
    path: str | Path,
    model: nn.Module | None = None,
    callbacks: Iterable[Callback] = (),
    progress: str | None = None,
    data: DataBundle | None = None,
) -> Run:
    """Continue an interrupted run from its last checkpoint, exactly where it stopped.

    A run stopped before its first checkpoint starts again from the beginning, in its folder,
    with its seed (so it ends as an uninterrupted run would). Pass ``model`` for a run of your
    own module and ``data`` for a run on a ``DataBundle`` you built yourself (registered
    datasets are reloaded from the config with the same seed). ``progress`` (auto, bar, log,
    none) overrides how the original run showed progress.
    """
    run_dir = Path(path)
    config = read_config(run_dir)
    if progress is not None:
        config.run.progress = progress
    execution = current_execution(config.train.strategy, config.train.device)
    with training_lock(run_dir, execution):
        return continue_run(run_dir, config, model, callbacks, data)


def continue_run(
    run_dir: Path,
    config: FathomConfig,
    model: nn.Module | None,
    callbacks: Iterable[Callback],
    data: DataBundle | None,
) -> Run:
    """``resume``'s work, with the run's lock held: from the last checkpoint, or from the start."""
    record = read_run_json(run_dir)
    checkpoint = run_dir / "checkpoints" / "last.safetensors"
    execution = current_execution(config.train.strategy, config.train.device)
    main = execution.is_main
    # Every rank resumes from the bytes rank 0 read, never from its own read of the file: that
    # could find another version (a process of the killed run still writing it) or none at all.
    payload = execution.broadcast(checkpoint.read_bytes() if main and checkpoint.exists() else None)
    seed_everything(config.train.seed)
    bundle = data if data is not None else load_data(config)
    if model is None:
        model = rebuild_for_resume(run_dir, record, config, bundle, payload is None)
    callbacks = [*transfer_callbacks(config, model), *callbacks]
    if payload is None:
        for leftover in ("metrics.jsonl", "diagnostics.jsonl") if main else ():
            (run_dir / leftover).unlink(missing_ok=True)
        seed_everything(config.train.seed)
        trainer = build_trainer(config, model, bundle, run_dir, callbacks)
        if main:
            update_run_json(run_dir, status="running", resumed_from_step=0)
        return train_and_finish(trainer, config, bundle, run_dir)
    tensors, saved = checkpoint_from_bytes(payload, checkpoint)
    trainer = build_trainer(config, model, bundle, run_dir, callbacks)
    trainer.restore(tensors, saved)
    if main:
        update_run_json(run_dir, status="running", resumed_from_step=trainer.state.step)
    return train_and_finish(trainer, config, bundle, run_dir)


def rebuild_for_resume(
    run_dir: Path, record: dict[str, Any], config: FathomConfig, bundle: DataBundle, restart: bool
) -> nn.Module:
    """The network as the run first built it (seeded as then): from the config, or with the
    lineage's transforms replayed when a checkpoint will supply the weights."""
    if not (record.get("model") or {}).get("registered", True):
        raise ConfigError(
            f"{run_dir} used a custom model; resume it from Python: fathom.resume(path, model=MyModel())"
        )
    transforms = (record.get("lineage") or {}).get("transforms") or []
    if not transforms:
        return build_model(config, bundle.info)
    if restart and config.model.init_from is not None:  # start from the source again
        return starting_network(config, bundle, build_model(config, bundle.info), quiet=True)[0]
    if restart:
        names = ", ".join(step["name"] for step in transforms)
        raise FathomError(
            f"{run_dir} stopped before its first checkpoint, and its model was made by "
            f"transforms ({names}) that cannot be redone from the folder; train it again"
        )
    return replay(record["lineage"], where=str(run_dir / "run.json"))


def train_and_finish(
    trainer: Trainer, config: FathomConfig, bundle: DataBundle, run_dir: Path, report: bool = True
) -> Run:
    """Train, then save the weights, evaluate on the test split and write the report."""
    started = time.perf_counter()
    previous = trainer.state.elapsed_seconds
    if not trainer.execution.is_main:  # the other processes train, the main one writes
        trainer.fit()
        final = trainer.execution.gathered(final_network(trainer))  # joins FSDP's gather
        return Run(run_dir, config, bundle.info, final, bundle)
    try:
        state = trainer.fit()
    except FathomError as error:
        if trainer.state.step == 0 and not (run_dir / "checkpoints" / "last.safetensors").exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # failed before the first step
        else:
            update_run_json(run_dir, status="failed", message=str(error))
            error.run_dir = run_dir
        raise
    except KeyboardInterrupt:
        update_run_json(
            run_dir, status="stopped", message="interrupted; continue with 'fathom resume'"
        )
        raise
    state.elapsed_seconds = previous + time.perf_counter() - started
    final = trainer.execution.gathered(final_network(trainer))  # plain, full weights
    save_weights(run_dir / "model.safetensors", final, config.model.name)
    run = Run(run_dir, config, bundle.info, final, bundle)
    evaluation = run.evaluate("test") if bundle.test is not None else {}
    best = {"metric": trainer.task.monitor, "value": state.best_metric, "epoch": state.best_epoch}
    update_run_json(
        run_dir, status="completed", message=state.stop_reason, duration_seconds=state.elapsed_seconds,
        epochs_completed=state.epoch, steps=state.step, device=str(trainer.device),
        precision=trainer.precision.name,
        best=best if state.best_metric is not None else None, test=evaluation,
    )  # fmt: skip
    if report and config.run.report:
        from fathom.report import write_report

        write_report(run_dir)
        if config.run.card and run.task.is_classifier:
            from fathom.api.trust import card

            card(run, report=True)
    return run


def final_network(trainer: Trainer) -> nn.Module:
    """The network a run ends with: the EMA weights when EMA is on, else the model."""
    return trainer.ema.shadow if trainer.ema is not None else trainer.model


__all__ = ["fit", "resume"]
