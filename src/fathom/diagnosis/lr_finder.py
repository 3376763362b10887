"""The learning-rate finder (Smith 2015; fastai's lr_find): an exponential sweep of the learning
rate over a few hundred training steps, recording the smoothed loss.

Suggested learning rate: the rate at the minimum of the smoothed loss divided by 10 (the
"minimum ÷ 10" rule); the rate of steepest descent is reported beside it. The model, the
optimizer, the loader position and every random number generator are restored afterwards, so
training starts exactly as if the sweep had never run.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fathom.errors import ConfigError

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer

RULE = "minimum of the smoothed loss ÷ 10"


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggestion": self.suggestion,
            "rule": self.rule,
            "steepest": self.steepest,
            "minimum": self.minimum,
            "learning_rates": self.learning_rates,
            "losses": self.losses,
            "smoothed": self.smoothed,
        }


class _Saved:
    """Everything the sweep changes, restored bitwise afterwards."""

    def __init__(self, trainer: Trainer) -> None:
        self.model = copy.deepcopy(trainer.model.state_dict())
        self.optimizers = {k: copy.deepcopy(o.state_dict()) for k, o in trainer.optimizers.items()}
        loader = trainer.train_loader
        self.loader = loader.state_dict() if hasattr(loader, "state_dict") else None
        self.rng = (
            torch.get_rng_state(),
            torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            np.random.get_state(),
            random.getstate(),
        )
        self.training = trainer.model.training

    def restore(self, trainer: Trainer) -> None:
        trainer.model.load_state_dict(self.model)
        for key, optimizer in trainer.optimizers.items():
            optimizer.load_state_dict(self.optimizers[key])
        if self.loader is not None:
            trainer.train_loader.load_state_dict(self.loader)
        torch_state, cuda_state, numpy_state, python_state = self.rng
        torch.set_rng_state(torch_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
        np.random.set_state(numpy_state)
        random.setstate(python_state)
        trainer.model.train(self.training)


def _batches(loader: Any, count: int) -> Any:
    produced = 0
    while produced < count:
        for batch in loader:
            yield batch
            produced += 1
            if produced >= count:
                return


def find_lr(
    trainer: Trainer,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.9,
    diverge: float = 4.0,
) -> LRFinderResult:
    """Sweep the learning rate of ``trainer`` from ``start`` to ``end`` over ``steps`` batches."""
    if len(trainer.optimizers) != 1:
        raise ConfigError("lr-find works on single-optimizer tasks; set optim.lr by hand here")
    optimizer = next(iter(trainer.optimizers.values()))
    if any(group.get("muon") for group in optimizer.param_groups):
        raise ConfigError(
            "lr-find sweeps one learning rate, and muon has two (optim.lr, optim.muon_lr); "
            "set them by hand"
        )
    phase = next(iter(trainer.optimizers))
    saved = _Saved(trainer)
    factor = (end / start) ** (1 / max(1, steps - 1))
    rates, losses, smoothed = [], [], []
    average, best = 0.0, math.inf
    trainer.model.train()
    try:
        for index, batch in enumerate(_batches(trainer.train_loader, steps)):
            rate = start * factor**index
            for group in optimizer.param_groups:
                group["lr"] = rate
            loss, _ = trainer.task.training_loss(phase, trainer.network, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                break
            average = smoothing * average + (1 - smoothing) * value
            current = average / (1 - smoothing ** (index + 1))
            rates.append(rate)
            losses.append(value)
            smoothed.append(current)
            best = min(best, current)
            if index > 5 and current > diverge * best:
                break
    finally:
        optimizer.zero_grad(set_to_none=True)
        saved.restore(trainer)
    return suggest(rates, losses, smoothed)


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
