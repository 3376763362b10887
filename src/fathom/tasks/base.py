"""A task owns the maths of a kind of learning: its losses, metrics and predictions.

The trainer owns the plumbing (devices, precision, accumulation, clipping, checkpoints). A task
with several networks (a GAN) returns several optimizer groups; the trainer then runs one
phase per group on every batch, in order, calling ``training_loss(phase, ...)`` for each.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from fathom.errors import ConfigError

if TYPE_CHECKING:
    from fathom.data.bundle import DataInfo
    from fathom.engine.callbacks import Callback

Batch = tuple[torch.Tensor, torch.Tensor]


@torch.no_grad()
def probe_outputs(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The model's outputs for two examples in eval mode, restoring its previous mode."""
    was_training = model.training
    model.eval()
    outputs = model(inputs[:2])
    model.train(was_training)
    return outputs


class Metrics(Protocol):
    def compute(self) -> dict[str, Any]: ...
    def details(self) -> dict[str, Any]: ...


class Task:
    """Base class for tasks. ``monitor`` names the validation metric that picks the best epoch."""

    name = "task"
    monitor = "loss"
    monitor_mode = "min"

    @classmethod
    def for_data(cls, info: DataInfo, **options: Any) -> Task:
        """Build the task for a dataset; subclasses take sizes (classes, vocabulary) from ``info``."""
        return cls(**options)

    def callbacks(self, run_dir: Path | None) -> list[Callback]:
        """Extra callbacks this task adds to training, e.g. sample grids saved to RUN/plots."""
        return []

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

    def evaluation_step(self, model: nn.Module, batch: Batch, metrics: Any) -> None:
        raise NotImplementedError

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Outputs for users: probabilities for classification, values for regression."""
        return model(inputs)

    def generate(
        self, model: nn.Module, info: DataInfo, output_dir: Path, **request: Any
    ) -> dict[str, Any]:
        """Sample from a generative model, write the results under ``output_dir``.

        Returns a summary for the user: ``{"files": [paths], "text": str | None, ...}``. Tasks
        that are not generative keep this default, which refuses with a one-line error.
        """
        raise ConfigError(
            f"this is a {self.name} run, not a generative model; 'generate' works on runs of "
            "generative tasks (gan, vae, diffusion, language_model)"
        )
