"""Optimizers and learning-rate schedules by name (registries), schedules as pure functions of
the step.

A schedule is a factor of each group's base learning rate, computed from the optimizer step
alone, so resuming needs nothing but the step count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from fathom.config import OptimConfig, ScheduleConfig
from fathom.engine.muon import Muon, hidden_matrices, muon_parameter_groups
from fathom.errors import ConfigError
from fathom.nn.classifier import parameter_groups
from fathom.registry import OPTIMIZERS, SCHEDULES


def build_optimizer(
    parameters: Iterable[Any], config: OptimConfig, model: nn.Module | None = None
) -> torch.optim.Optimizer:
    """The optimizer registered under ``config.name`` (``fathom list optimizers``).

    Muon needs the ``model`` to tell its hidden matrices from embeddings and the output layer.
    ``optim.layer_decay`` (discriminative learning rates) needs it for its parameter groups.
    """
    factory = OPTIMIZERS.get(config.name)
    if config.layer_decay is not None and model is not None:
        if config.name == "muon":
            raise ConfigError("optim.layer_decay does not combine with optim.name=muon")
        parameters = layer_decayed_groups(parameters, model, config.lr, config.layer_decay)
    common: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.fused:
        if not getattr(factory, "fusable", False):
            raise ConfigError(
                f"optim.fused is not available for {config.name}; use sgd, adam or adamw"
            )
        common["fused"] = True
    return factory(parameters, config, model, common)


def layer_decayed_groups(
    parameters: Iterable[Any], model: nn.Module, lr: float, decay: float
) -> list[dict[str, Any]]:
    """One optimizer group per parameter group of ``model`` (stem first, head last: the model
    contract), the head at ``lr`` and each group below at ``decay`` times the rate above it.

    Only ``parameters`` (what the task trains) are kept; the schedule then scales every group's
    rate alike, from each group's own ``initial_lr``.
    """
    wanted = {id(parameter) for parameter in parameters}
    groups = [[p for p in group if id(p) in wanted] for group in parameter_groups(model)]
    last = len(groups) - 1
    return [
        {"params": group, "lr": lr * decay ** (last - index)}
        for index, group in enumerate(groups)
        if group
    ]


def _sgd(parameters: Any, config: OptimConfig, model: Any, common: dict[str, Any]) -> Any:
    momentum = config.momentum
    return torch.optim.SGD(
        parameters, momentum=momentum, nesterov=config.nesterov and momentum > 0, **common
    )


def _adam(parameters: Any, config: OptimConfig, model: Any, common: dict[str, Any]) -> Any:
    return torch.optim.Adam(parameters, betas=config.betas, eps=config.eps, **common)


def _adamw(parameters: Any, config: OptimConfig, model: Any, common: dict[str, Any]) -> Any:
    return torch.optim.AdamW(parameters, betas=config.betas, eps=config.eps, **common)


def _rmsprop(parameters: Any, config: OptimConfig, model: Any, common: dict[str, Any]) -> Any:
    return torch.optim.RMSprop(
        parameters, alpha=config.alpha, eps=config.eps, momentum=config.momentum, **common
    )


def _muon(parameters: Any, config: OptimConfig, model: Any, common: dict[str, Any]) -> Any:
    if model is None:
        raise ConfigError("optim.name=muon needs the model to find its hidden matrices")
    groups = muon_parameter_groups(parameters, hidden_matrices(model), config.muon_lr)
    return Muon(groups, momentum=config.muon_momentum, betas=config.betas, eps=config.eps, **common)


for _factory in (_sgd, _adam, _adamw):
    _factory.fusable = True  # type: ignore[attr-defined]  # one fused kernel per step

OPTIMIZERS.register("sgd", _sgd, description="SGD with momentum (optim.momentum) and Nesterov")
OPTIMIZERS.register("adam", _adam, description="Adam (optim.betas, optim.eps)")
OPTIMIZERS.register("adamw", _adamw, description="AdamW: Adam with decoupled weight decay")
OPTIMIZERS.register("rmsprop", _rmsprop, description="RMSprop (optim.alpha, optim.momentum)")
OPTIMIZERS.register(
    "muon", _muon, description="Muon on hidden matrices (optim.muon_lr), AdamW on the rest"
)


class Schedule:
    """Linear warmup, then constant, step, exponential, cosine or one-cycle decay."""

    def __init__(self, config: ScheduleConfig, steps_per_epoch: int, total_steps: int) -> None:
        self.config = config
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = self.planned_steps = max(1, total_steps)
        self.warmup_steps = int(round(config.warmup_epochs * self.steps_per_epoch))

    def end_within(self, updates_done: int, seconds_per_update: float, seconds_left: float) -> None:
        """Shorten the schedule so that it ends when a time budget runs out, at the measured pace
        (never beyond the planned number of updates)."""
        if seconds_per_update <= 0:
            return
        fitting = updates_done + int(max(0.0, seconds_left) / seconds_per_update)
        self.total_steps = max(1, updates_done + 1, min(self.planned_steps, fitting))

    def factor(self, step: int) -> float:
        """Multiplier of the base learning rate for optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        remaining = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / remaining)
        decay = SCHEDULES.get(self.config.name)
        return decay(self.config, step / self.steps_per_epoch, progress)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set each group's learning rate for ``step``; returns the factor."""
        factor = self.factor(step)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
        return factor


def _cosine(start: float, end: float, progress: float) -> float:
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


# A schedule is ``decay(config, epoch, progress) -> factor``: ``epoch`` is fractional, ``progress``
# runs from 0 to 1 over the updates after warmup.
def _constant(config: ScheduleConfig, epoch: float, progress: float) -> float:
    return 1.0


def _step(config: ScheduleConfig, epoch: float, progress: float) -> float:
    return config.gamma ** math.floor(epoch / config.step_epochs)


def _exponential(config: ScheduleConfig, epoch: float, progress: float) -> float:
    return config.gamma**epoch


def _cosine_decay(config: ScheduleConfig, epoch: float, progress: float) -> float:
    return _cosine(1.0, config.min_lr_ratio, progress)


def _one_cycle(config: ScheduleConfig, epoch: float, progress: float) -> float:
    if progress < config.peak_fraction:
        return _cosine(config.start_ratio, 1.0, progress / config.peak_fraction)
    tail = (progress - config.peak_fraction) / (1.0 - config.peak_fraction)
    return _cosine(1.0, config.min_lr_ratio, tail)


SCHEDULES.register("constant", _constant, description="the base rate throughout (after warmup)")
SCHEDULES.register("step", _step, description="times schedule.gamma every schedule.step_epochs")
SCHEDULES.register("exponential", _exponential, description="times schedule.gamma every epoch")
SCHEDULES.register("cosine", _cosine_decay, description="cosine decay to schedule.min_lr_ratio")
SCHEDULES.register(
    "onecycle", _one_cycle, description="one-cycle: cosine up to the peak, then down (Smith)"
)
