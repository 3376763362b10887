"""Forecasting: multi-step predictions of a scaled series; MAE, RMSE and MASE in the series' units.

Batches are sliding windows from ``fathom.data.series``: inputs ``[B, T, 1]`` and the next
``horizon`` values ``[B, horizon]``, both scaled with training-part statistics. With ``relative``
(the default) the model sees the window minus its last value and predicts the change from it,
so a trend that leaves the training range does not leave the model's. Metrics are reported in
the original units; MASE divides the MAE by the in-sample seasonal-naive MAE of the training part.
At the end of training the task adds naive, seasonal-naive and ARIMA baselines on the same test
windows to the report (``fathom.tasks.forecast_baselines``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError, DataError
from fathom.tasks.base import Batch, Task, probe_outputs

if TYPE_CHECKING:
    from fathom.engine.callbacks import Callback

LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.smooth_l1_loss}


class ForecastMetrics:
    """Scaled loss plus MAE, RMSE and MASE in original units, from running sums."""

    def __init__(self, std: float, mase_scale: float, device: torch.device) -> None:
        self.std, self.mase_scale = std, mase_scale
        self.loss_sum, self.abs_sum, self.sq_sum = (
            torch.zeros((), dtype=torch.float64, device=device) for _ in range(3)
        )
        self.count = 0
        self.windows = 0

    @torch.no_grad()
    def update(self, predictions: torch.Tensor, targets: torch.Tensor, loss_sum: torch.Tensor):
        error = (predictions.double() - targets.double()) * self.std  # scaling's mean cancels
        self.loss_sum += loss_sum.double()
        self.abs_sum += error.abs().sum()
        self.sq_sum += error.square().sum()
        self.count += error.numel()
        self.windows += len(error)

    def compute(self) -> dict[str, Any]:
        count = max(1, self.count)
        mae = float(self.abs_sum) / count
        return {
            "loss": float(self.loss_sum) / max(1, self.windows),
            "mae": mae,
            "rmse": (float(self.sq_sum) / count) ** 0.5,
            "mase": mae / self.mase_scale,
        }

    def details(self) -> dict[str, Any]:
        return {}


class Forecast(Task):
    name = "forecast"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(
        self,
        info: DataInfo,
        relative: bool = True,
        loss: str = "mse",
        baselines: bool = True,
        arima_order: tuple[int, int, int] | list[int] = (2, 1, 1),
        arima_seasonal: bool = True,
    ) -> None:
        if loss not in LOSSES:
            raise ConfigError(f"task.loss must be one of {', '.join(LOSSES)}, got '{loss}'")
        if len(arima_order) != 3:
            raise ConfigError(f"task.arima_order must be [p, d, q], got {list(arima_order)}")
        self.info = info
        self.horizon = int(info.extra["horizon"])
        self.std = float(info.normalization["std"][0]) if info.normalization else 1.0
        self.mase_scale = float(info.extra.get("mase_scale", 1.0))
        self.relative, self.loss_name, self.baselines = relative, loss, baselines
        self.arima_order = tuple(int(value) for value in arima_order)
        self.arima_seasonal = arima_seasonal

    @classmethod
    def for_data(cls, info: DataInfo, **options: Any) -> Forecast:
        if "horizon" not in info.extra:
            raise ConfigError(
                f"task 'forecast' needs a time-series dataset (sunspots, co2, elnino, nile, "
                f"series), not '{info.name}'"
            )
        return cls(info, **options)

    def callbacks(self, run_dir: Path | None) -> list[Callback]:
        if run_dir is None or not self.baselines:
            return []
        from fathom.tasks.forecast_baselines import ForecastReport

        return [ForecastReport(run_dir, self)]

    def forward(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Forecasts ``[B, horizon]`` in scaled units (adding back the last value if relative)."""
        if not self.relative:
            return model(inputs).float().reshape(len(inputs), -1)
        sequence = inputs if inputs.dim() == 3 else inputs.unsqueeze(-1)
        last = sequence[:, -1:, :]  # each feature's last value; the target is feature 0
        outputs = model(sequence - last).float().reshape(len(inputs), -1)
        return outputs + last[:, 0, :1].float()

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        outputs = probe_outputs(model, batch[0])
        if outputs.reshape(len(outputs), -1).shape[1] != self.horizon:
            raise DataError(
                f"the model outputs shape {list(outputs.shape)} but the forecast horizon is "
                f"{self.horizon}: expected [batch, {self.horizon}]"
            )

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, targets = batch
        predictions = self.forward(model, inputs)
        loss = LOSSES[self.loss_name](predictions, targets.float())
        mae = (predictions.detach() - targets).abs().mean() * self.std
        return loss, {"mae": mae}

    def new_metrics(self, device: torch.device) -> ForecastMetrics:
        return ForecastMetrics(self.std, self.mase_scale, device)

    def evaluation_step(self, model: nn.Module, batch: Batch, metrics: ForecastMetrics) -> None:
        inputs, targets = batch
        predictions = self.forward(model, inputs)
        loss = LOSSES[self.loss_name](predictions, targets.float(), reduction="none")
        metrics.update(predictions, targets, loss.mean(dim=1).sum())

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Forecasts of scaled windows, in the series' original units."""
        mean = float(self.info.normalization["mean"][0]) if self.info.normalization else 0.0
        return self.forward(model, inputs) * self.std + mean
