"""The learning-rate finder (Smith 2015; fastai's lr_find): an exponential sweep of the learning
rate over a hundred or so training steps of the one ``Trainer``, recording the smoothed loss.

Suggested learning rate: the rate at the minimum of the smoothed loss divided by 10 (the
"minimum ÷ 10" rule); the rate of steepest descent is reported beside it. The model, the
optimizer, the loader position and every random number generator are restored afterwards (by
the trainer's own checkpoint code), so training starts exactly as if the sweep had never run.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fathom.engine.callbacks import Callback, StopTraining
from fathom.errors import ConfigError, TrainingDiverged

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer

RULE = "minimum of the smoothed loss ÷ 10"
FLAT = 0.02  # the smoothed loss must fall this fraction below its start for its minimum to count


@dataclass
class LRFinderResult:
    learning_rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    steepest: float | None
    minimum: float
    rule: str = RULE
    plot: Path | None = field(default=None)
    flat: bool = False  # the loss fell nowhere in the sweep: the minimum (and suggestion) is noise

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggestion": self.suggestion,
            "rule": self.rule,
            "steepest": self.steepest,
            "minimum": self.minimum,
            "flat": self.flat,
            "learning_rates": self.learning_rates,
            "losses": self.losses,
            "smoothed": self.smoothed,
        }


class LearningRateSweep(Callback):
    """Sets an exponentially rising learning rate before each batch and records the loss after
    it; stops training when the sweep is done or the loss has diverged."""

    order = -100  # before every other callback

    def __init__(
        self, start: float, end: float, steps: int, smoothing: float, diverge: float
    ) -> None:
        self.start, self.steps, self.smoothing, self.diverge = start, steps, smoothing, diverge
        self.factor = (end / start) ** (1 / max(1, steps - 1))
        self.rates: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._average, self._best, self._rate = 0.0, math.inf, start

    def batch_start(self, trainer: Trainer) -> None:
        self._rate = self.start * self.factor ** len(self.rates)
        for optimizer in trainer.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = self._rate

    def batch_end(self, trainer: Trainer) -> None:
        value = float(trainer.last_loss) if trainer.last_loss is not None else math.nan
        if not math.isfinite(value):
            raise StopTraining("the loss diverged")
        index = len(self.rates)
        self._average = self.smoothing * self._average + (1 - self.smoothing) * value
        current = self._average / (1 - self.smoothing ** (index + 1))
        self.rates.append(self._rate)
        self.losses.append(value)
        self.smoothed.append(current)
        self._best = min(self._best, current)
        if index > 5 and current > self.diverge * self._best:
            raise StopTraining("the loss diverged")
        if len(self.rates) >= self.steps:
            raise StopTraining("the sweep is done")


def find_lr(
    trainer: Trainer,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.9,
    diverge: float = 4.0,
) -> LRFinderResult:
    """Sweep the learning rate of ``trainer`` from ``start`` to ``end`` over ``steps`` batches.

    The sweep is the trainer's own loop (precision, clipping and accumulation apply) driven by a
    ``LearningRateSweep`` callback; everything it changes (model, optimizers, loader position,
    random number generators, progress) is restored from a checkpoint state taken before it.
    """
    if len(trainer.optimizers) != 1:
        raise ConfigError("lr-find works on single-optimizer tasks; set optim.lr by hand here")
    optimizer = next(iter(trainer.optimizers.values()))
    if any(group.get("muon") for group in optimizer.param_groups):
        raise ConfigError(
            "lr-find sweeps one learning rate, and muon has two (optim.lr, optim.muon_lr); "
            "set them by hand"
        )
    tensors, saved = trainer.checkpoint_state()
    tensors = {key: value.clone() for key, value in tensors.items()}
    saved = copy.deepcopy(saved)
    sweep = LearningRateSweep(start, end, steps, smoothing, diverge)
    kept = trainer.callbacks, trainer.val_loader, trainer.epochs
    trainer.callbacks = [sweep, *trainer.callbacks]
    trainer.val_loader = None  # no evaluation at epoch ends
    trainer.epochs = trainer.state.epoch + math.ceil(steps / max(1, len(trainer.train_loader))) + 1
    try:
        trainer.fit()
    except TrainingDiverged:
        pass  # the sweep went past the rate where the loss explodes: the curve so far is kept
    finally:
        trainer.callbacks, trainer.val_loader, trainer.epochs = kept
        trainer.restore(tensors, saved)
    return suggest(sweep.rates, sweep.losses, sweep.smoothed)


def suggest(rates: list[float], losses: list[float], smoothed: list[float]) -> LRFinderResult:
    if len(smoothed) < 5:
        raise ConfigError("lr-find: the loss diverged at once; lower the start of the sweep")
    lowest = min(range(len(smoothed)), key=smoothed.__getitem__)
    slopes = np.gradient(np.array(smoothed[: lowest + 1]), np.log(np.array(rates[: lowest + 1])))
    steepest = float(rates[int(np.argmin(slopes))]) if lowest >= 2 else None
    return LRFinderResult(
        rates,
        losses,
        smoothed,
        suggestion=rates[lowest] / 10,
        steepest=steepest,
        minimum=rates[lowest],
        flat=smoothed[0] - smoothed[lowest] < FLAT * abs(smoothed[0]),
    )


def flat_sweep_message(result: LRFinderResult) -> str:
    """Why a flat sweep suggests nothing (an LSTM on sentiment stays at chance for 100 steps)."""
    return (
        f"the loss did not fall at any rate of the sweep ({result.smoothed[0]:.3g} at the start, "
        f"{min(result.smoothed):.3g} at best): its lowest point is noise, so there is no rate to "
        "suggest; set optim.lr yourself (a recipe's rate), or sweep more steps (--steps)"
    )


def plot_lr_finder(result: LRFinderResult, path: Path) -> Path:
    from fathom.diagnosis.plots import new_figure, save_figure

    figure, axes = new_figure(6.5, 3.8)
    axis = axes[0]
    axis.plot(result.learning_rates, result.losses, color="#93c5fd", linewidth=0.8, label="loss")
    axis.plot(
        result.learning_rates, result.smoothed, color="#2563eb", linewidth=1.6, label="smoothed"
    )
    axis.axvline(
        result.suggestion,
        color="#ea580c",
        linestyle="--",
        label=f"suggested {result.suggestion:.2g}",
    )
    if result.steepest is not None:
        axis.axvline(
            result.steepest, color="#6b7280", linestyle=":", label=f"steepest {result.steepest:.2g}"
        )
    axis.set_xscale("log")
    top = max(result.smoothed[0] * 1.5, min(result.smoothed) * 2)
    axis.set_ylim(min(result.losses) * 0.9, top)
    axis.set_xlabel("learning rate", fontsize=9)
    axis.set_ylabel("training loss", fontsize=9)
    axis.set_title("Learning-rate finder", loc="left", fontsize=10, fontweight="bold")
    axis.legend(fontsize=8, frameon=False)
    result.plot = save_figure(figure, Path(path))
    return result.plot
