"""The fixed set of training events, and the exception that stops training cleanly.

Events fire in this order: fit_start, (epoch_start, (batch_start, after_backward, batch_end)*,
evaluation_end, epoch_end)*, fit_end. When training fails with a FathomError (a diverged loss,
say), ``fit_failed`` fires instead of fit_end, with the error in ``trainer.failure``. A callback
overrides the events it needs; raising ``StopTraining`` from any event ends the run after the
current event. A callback that holds state across steps returns it from ``state_dict`` (JSON
values) and takes it back in ``load_state_dict``: checkpoints save it, so resume is exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from fathom.config import EarlyStoppingConfig
from fathom.errors import ConfigError, closest

if TYPE_CHECKING:
    from fathom.engine.task import TrainingTask
    from fathom.engine.trainer import Trainer

EVENTS = (
    "fit_start",
    "epoch_start",
    "batch_start",
    "after_backward",
    "batch_end",
    "evaluation_end",
    "epoch_end",
    "fit_end",
    "fit_failed",
)


class StopTraining(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a callback to end training; the run finishes normally. ``limit``: raised by
    the trainer's own caps (max_steps, max_seconds), which a resumed run checks afresh."""

    def __init__(self, reason: str = "stopped", limit: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit


class Callback:
    """Base class: every event is a no-op. ``order`` sorts callbacks (lower runs first)."""

    order = 0

    def fit_start(self, trainer: Trainer) -> None: ...
    def epoch_start(self, trainer: Trainer) -> None: ...
    def batch_start(self, trainer: Trainer) -> None: ...
    def after_backward(self, trainer: Trainer) -> None: ...
    def batch_end(self, trainer: Trainer) -> None: ...
    def evaluation_end(self, trainer: Trainer) -> None: ...
    def epoch_end(self, trainer: Trainer) -> None: ...
    def fit_end(self, trainer: Trainer) -> None: ...
    def fit_failed(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """State to keep in checkpoints (JSON values); empty for stateless callbacks."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what ``state_dict`` returned."""


class EarlyStopping(Callback):
    """Stop when a validation metric has not improved for ``patience`` evaluations."""

    def __init__(self, metric: str, patience: int, mode: str = "auto", min_delta: float = 0.0):
        self.metric = metric
        self.patience = patience
        self.min_delta = min_delta
        self.mode = (
            mode if mode != "auto" else ("min" if "loss" in metric or "error" in metric else "max")
        )
        self.best: float | None = None
        self.wait = 0

    def evaluation_end(self, trainer: Trainer) -> None:
        value = trainer.last_evaluation.get(self.metric.removeprefix("val_"))
        if value is None:
            return
        improved = self.best is None or (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if improved:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            raise StopTraining(
                f"early stopping: {self.metric} has not improved for {self.patience} evaluations"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = state["best"], state["wait"]


def check_early_stopping(
    stop: EarlyStoppingConfig | None, task: TrainingTask, validation: bool
) -> None:
    """Refuse, before training, early stopping that could never stop: no validation split, or a
    metric the task does not report (tasks whose metrics are known only once seen pass)."""
    if stop is None:
        return
    if not validation:
        raise ConfigError(
            "train.early_stopping needs a validation split (set data.val_fraction above 0)"
        )
    reported = sorted(task.new_metrics(torch.device("cpu")).compute())
    name = stop.metric.removeprefix("val_")
    if reported and name not in reported:
        choices = [f"val_{metric}" for metric in reported]
        hint = closest(stop.metric, choices) or f" (choose from {', '.join(choices)})"
        raise ConfigError(
            f"train.early_stopping.metric: task {task.name} reports no '{stop.metric}'{hint}"
        )
