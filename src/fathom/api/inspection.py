"""The Python API of ``fathom.diagnosis``: the LR finder, the doctor and explanations of a run."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fathom.assemble import (
    ConfigSource,
    build_trainer,
    load_data,
    prepare,
    resolve_config,
    seed_everything,
)
from fathom.config import FathomConfig
from fathom.data.bundle import DataBundle
from fathom.data.splits import normalize_inputs
from fathom.engine import Trainer
from fathom.errors import ConfigError
from fathom.runs import Run, load
from fathom.runs.folder import read_config, read_run_json, update_run_json


def lr_finder_trainer(config: FathomConfig, model: nn.Module, bundle: DataBundle) -> Trainer:
    """A throw-away trainer for the LR finder: no run folder, diagnostics or progress."""
    probe = config.model_copy(deep=True)
    probe.optim.lr = 1e-3  # a placeholder: the sweep sets the rate of every step
    probe.train.diagnostics = False
    probe.train.early_stopping = probe.train.max_steps = probe.train.max_seconds = None
    probe.run.progress = "none"
    seed_everything(config.train.seed)
    return build_trainer(probe, model, bundle, None)


def choose_learning_rate(
    config: FathomConfig, model: nn.Module, bundle: DataBundle, run_dir: Path
) -> None:
    """``optim.lr: auto``: run the LR finder, set its suggestion, keep its plot and numbers."""
    from fathom.diagnosis.lr_finder import find_lr, flat_sweep_message, plot_lr_finder

    try:
        result = find_lr(lr_finder_trainer(config, model, bundle))
        if result.flat:
            raise ConfigError(f"optim.lr=auto: {flat_sweep_message(result)}")
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    config.optim.lr = result.suggestion
    plot_lr_finder(result, run_dir / "plots" / "lr_finder.png")
    update_run_json(
        run_dir,
        lr_finder={
            k: v
            for k, v in result.to_dict().items()
            if k in ("suggestion", "rule", "steepest", "minimum")
        },
    )


def lr_find(
    model: nn.Module | str | None = None,
    data: DataBundle | str | None = None,
    *,
    config: ConfigSource = None,
    overrides: Iterable[str] = (),
    output: str | Path | None = None,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    **shortcuts: Any,
) -> Any:
    """Sweep the learning rate on the model and data ``fit`` would use; returns an
    ``LRFinderResult`` (``.suggestion``, ``.rule``, the curve) and plots it to ``output``."""
    from fathom.diagnosis.lr_finder import find_lr, plot_lr_finder

    resolved, bundle, network = prepare(model, data, config, overrides, shortcuts)
    result = find_lr(lr_finder_trainer(resolved, network, bundle), start, end, steps)
    if output is not None:
        plot_lr_finder(result, Path(output))
    return result


def doctor(run: Run | str | Path) -> list[Any]:
    """Diagnose a finished run from its folder: a list of ``Diagnosis`` (empty: no problems)."""
    from fathom.diagnosis.doctor import diagnose_run

    path = Path(run.path if isinstance(run, Run) else run)
    read_run_json(path)
    return diagnose_run(path, load_bundle=lambda: load_data(read_config(path)))


def explain(
    run: Run | str | Path,
    inputs: torch.Tensor | list[str | Path] | None = None,
    method: str = "saliency",
    target: int | None = None,
    count: int = 16,
) -> list[Path]:
    """Explain a run's predictions (saliency, integrated-gradients, grad-cam, occlusion, filters,
    attention, top-loss): PNGs in RUN/explain, shown in the report. ``inputs``: files or a
    normalised tensor; default the first test examples."""
    from fathom.diagnosis.explain import check_method, explain_run

    check_method(method)
    run = run if isinstance(run, Run) else load(run)
    display = None
    if inputs is not None and not isinstance(inputs, torch.Tensor):
        from fathom.data.inputs import read_inputs

        display = read_inputs([Path(p) for p in inputs], run.info)
        inputs = display
        if run.info.normalization:
            norm = run.info.normalization
            inputs = normalize_inputs(display.float(), norm["mean"], norm["std"])

    def test_split() -> Any:
        run.data = run.data or load_data(run.config)
        return run.data.test or run.data.val or run.data.train

    files = explain_run(run, inputs, display, method, test_split, target, count)
    run.report()
    return files


def run_planted_fault(setup: Any, overrides: Iterable[str] = ()) -> tuple[list[str], float | None]:
    """Train a ``fathom.diagnosis.sabotage.Setup`` in memory (no run folder): the doctor's diagnosis
    keys and the test accuracy (None when training diverged)."""
    from fathom.data.loader import make_loader
    from fathom.diagnosis import Diagnostics
    from fathom.diagnosis.sabotage import BASE_OVERRIDES
    from fathom.engine import evaluate
    from fathom.errors import TrainingDiverged

    every = [*BASE_OVERRIDES, *setup.overrides, *overrides, "run.progress=none"]
    config = resolve_config({"model": {"name": "mlp"}}, overrides=every, use_recipe=False)
    seed_everything(config.train.seed)
    trainer = build_trainer(config, setup.model, setup.bundle, None)
    diagnostics = next(c for c in trainer.callbacks if isinstance(c, Diagnostics))
    try:
        trainer.fit()
    except TrainingDiverged:  # the diagnostics saw it (fit_failed) and diagnosed the run
        return [d.key for d in diagnostics.diagnoses], None
    loader = make_loader(setup.bundle.test, 512)
    metrics, _ = evaluate(trainer.model, trainer.task, loader, trainer.device)
    return [d.key for d in diagnostics.diagnoses], float(metrics["accuracy"])


__all__ = ["doctor", "explain", "lr_find", "run_planted_fault"]
