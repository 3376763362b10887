"""The forecast task's metrics and its baselines on the same test windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fathom.data.series import series_bundle
from fathom.errors import ConfigError
from fathom.tasks import create_for_data
from fathom.tasks.forecast_baselines import (
    compare_with_baselines,
    naive_forecasts,
    origins_of_test_windows,
    seasonal_naive_forecasts,
)


class Repeat(nn.Module):
    """Forecasts the last input value for every step (relative mode: predicts zero change)."""

    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.horizon = horizon
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs[:, -1, :1].repeat(1, self.horizon) * 0


def periodic_bundle():
    values = 20 + 5 * np.sin(np.arange(240) * 2 * np.pi / 12) + np.arange(240) * 0.05
    return series_bundle("periodic", values, input_length=24, horizon=6, season=12), values


def test_naive_and_seasonal_naive_forecasts() -> None:
    values = np.arange(100.0)
    origins = np.array([30, 50])
    np.testing.assert_array_equal(naive_forecasts(values, origins, 3), [[29] * 3, [49] * 3])
    seasonal = seasonal_naive_forecasts(values, origins, 5, 4)
    np.testing.assert_array_equal(seasonal[0], [26, 27, 28, 29, 26])


def test_metrics_are_in_original_units_and_mase_uses_the_training_scale() -> None:
    bundle, values = periodic_bundle()
    task = create_for_data("forecast", bundle.info)
    metrics = task.new_metrics(torch.device("cpu"))
    task.evaluation_step(Repeat(6), (bundle.test.inputs, bundle.test.targets), metrics)
    result = metrics.compute()
    origins = origins_of_test_windows(bundle.info)
    targets = values[origins[:, None] + np.arange(6)]
    naive_mae = np.abs(naive_forecasts(values, origins, 6) - targets).mean()
    assert result["mae"] == pytest.approx(naive_mae, rel=1e-4)
    assert result["mase"] == pytest.approx(naive_mae / bundle.info.extra["mase_scale"], rel=1e-4)


def test_the_comparison_runs_every_method_on_the_same_windows() -> None:
    bundle, _ = periodic_bundle()
    task = create_for_data(
        "forecast", bundle.info, arima_seasonal=False
    )  # fast; CLI test: seasonal
    result = compare_with_baselines(task, Repeat(6))
    assert "error" not in result["arima"], result["arima"]
    errors = result["errors"]
    assert set(errors) == {"neural model", "naive", "seasonal naive (m=12)", "ARIMA"}
    assert errors["neural model"]["mae"] == pytest.approx(errors["naive"]["mae"], rel=1e-4)
    assert errors["seasonal naive (m=12)"]["mase"] < errors["naive"]["mase"]
    assert all(f.shape == (result["windows"], 6) for f in result["forecasts"].values())


def test_forecast_task_options_are_checked() -> None:
    bundle, _ = periodic_bundle()
    with pytest.raises(ConfigError, match="task.loss must be one of"):
        create_for_data("forecast", bundle.info, loss="l3")
    from fathom.data.bundle import DataInfo

    with pytest.raises(ConfigError, match="needs a time-series dataset"):
        create_for_data("forecast", DataInfo("digits", "classification", (64,), 10))
