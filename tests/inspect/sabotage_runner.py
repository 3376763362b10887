"""Run a planted fault in memory (no run folder) and return the doctor's findings (tests only)."""

from __future__ import annotations

from fathom.api import build_trainer, resolve_config, seed_everything
from fathom.engine.trainer import evaluate
from fathom.errors import TrainingDiverged
from fathom.inspect import Diagnostics
from fathom.inspect.sabotage import BASE_OVERRIDES, Setup


def run_setup(setup: Setup, extra: tuple[str, ...] = ()) -> tuple[list[str], float | None]:
    """(diagnosis keys, test accuracy or None if training diverged)."""
    overrides = [*BASE_OVERRIDES, *setup.overrides, *extra, "run.progress=none"]
    config = resolve_config({"model": {"name": "mlp"}}, overrides=overrides, use_recipe=False)
    seed_everything(config.train.seed)
    trainer = build_trainer(config, setup.model, setup.bundle, None)
    diagnostics = next(c for c in trainer.callbacks if isinstance(c, Diagnostics))
    try:
        trainer.fit()
    except TrainingDiverged as error:
        diagnostics.training_failed(trainer, error)
        return [d.key for d in diagnostics.diagnoses], None
    from fathom.data.loader import make_loader

    loader = make_loader(setup.bundle.test, 512)
    metrics, _ = evaluate(trainer.model, trainer.task, loader, trainer.device)
    return [d.key for d in diagnostics.diagnoses], float(metrics["accuracy"])
