"""The fixed set of training events, and the exception that stops training cleanly.

Events fire in this order: fit_start, (epoch_start, (batch_start, after_backward, batch_end)*,
evaluation_end, epoch_end)*, fit_end. A callback overrides the ones it needs; raising
``StopTraining`` from any event ends the run after the current event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
)


class StopTraining(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a callback to end training; the run finishes normally."""

    def __init__(self, reason: str = "stopped") -> None:
        super().__init__(reason)
        self.reason = reason


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


class EarlyStopping(Callback):
    """Stop when a validation metric has not improved for ``patience`` evaluations."""

    def __init__(self, metric: str, patience: int, mode: str = "auto", min_delta: float = 0.0):
        self.metric = metric
        self.patience = patience
        self.min_delta = min_delta
        self.mode = (
            mode if mode != "auto" else ("min" if "loss" in metric or "error" in metric else "max")
        )

    def evaluation_end(self, trainer: Trainer) -> None:
        state = trainer.state
        value = trainer.last_evaluation.get(self.metric.removeprefix("val_"))
        if value is None:
            return
        best = state.early_stopping_best
        improved = best is None or (
            value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta
        )
        if improved:
            state.early_stopping_best, state.early_stopping_wait = value, 0
            return
        state.early_stopping_wait += 1
        if state.early_stopping_wait >= self.patience:
            raise StopTraining(
                f"early stopping: {self.metric} has not improved for {self.patience} evaluations"
            )
