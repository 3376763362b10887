"""Regression: mean squared error loss; MAE, RMSE and R² metrics."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.engine.metrics import RegressionMetrics
from fathom.errors import ConfigError, DataError
from fathom.tasks.base import Batch, Task, probe_outputs


class Regression(Task):
    name = "regression"
    monitor = "loss"
    monitor_mode = "min"
    graph_predictions = True

    def __init__(self, output_size: int = 1) -> None:
        self.output_size = output_size

    @classmethod
    def for_data(cls, info: DataInfo) -> Regression:
        if info.task == "classification":
            raise ConfigError(
                f"task regression needs numeric targets; dataset '{info.name}' has class labels "
                f"(a CSV with numeric targets: data.task=regression)"
            )
        return cls(info.output_size)

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        outputs = probe_outputs(model, batch[0])
        if outputs.reshape(len(outputs), -1).shape[1] != self.output_size:
            raise DataError(
                f"the model outputs shape {list(outputs.shape)} but the target has "
                f"{self.output_size} value(s) per example"
            )

    def _predictions(
        self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        return model(inputs).float().reshape(targets.shape)

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, targets = batch
        predictions = self._predictions(model, inputs, targets)
        loss = F.mse_loss(predictions, targets.float())
        return loss, {"mae": (predictions.detach() - targets).abs().mean()}

    def new_metrics(self, device: torch.device) -> RegressionMetrics:
        return RegressionMetrics(device)

    def evaluation_step(self, model: nn.Module, batch: Batch, metrics: RegressionMetrics) -> None:
        inputs, targets = batch
        predictions = self._predictions(model, inputs, targets)
        loss_sum = F.mse_loss(predictions, targets.float(), reduction="sum")
        metrics.update(predictions, targets, loss_sum)

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return model(inputs).float()
