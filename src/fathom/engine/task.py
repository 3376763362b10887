"""The interface the trainer drives: what a task must give for training and evaluation.

A task owns the maths of a kind of learning (``fathom.tasks`` implements this interface); the
trainer owns the plumbing (devices, precision, accumulation, clipping, checkpoints). A task with
several networks (a GAN) returns several optimizer groups; the trainer then runs one phase per
group on every batch, in order, calling ``training_loss(phase, ...)`` for each.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import torch
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]


class Metrics(Protocol):
    """Accumulates evaluation batches; ``compute`` gives scalars, ``details`` the rest."""

    def compute(self) -> dict[str, Any]: ...
    def details(self) -> dict[str, Any]: ...


class TrainingTask:
    """Base class of the training interface. ``monitor`` names the validation metric that picks
    the best epoch; ``monitor_mode`` says whether lower (``min``) or higher (``max``) is better."""

    name = "task"
    monitor = "loss"
    monitor_mode = "min"

    def optimizer_groups(self, model: nn.Module) -> dict[str, Iterable[nn.Parameter]]:
        """Parameters per optimization phase; one phase named ``main`` unless overridden."""
        return {"main": [p for p in model.parameters() if p.requires_grad]}

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        """Called once before training with a first batch: raise a FathomError if it cannot work."""

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise in ``phase`` and extra per-batch values to log (device tensors)."""
        raise NotImplementedError

    def new_metrics(self, device: torch.device) -> Metrics:
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors the task trains or keeps outside the model (a projection head, BYOL's target
        network): checkpoints save them, so resume is exact. Most tasks keep none."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Take back what ``state_dict`` returned."""

    def evaluation_step(self, model: nn.Module, batch: Batch, metrics: Any) -> None:
        raise NotImplementedError
