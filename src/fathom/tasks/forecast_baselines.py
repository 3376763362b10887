"""Baselines for forecasting runs, on the same test windows as the neural model.

``naive`` repeats the last observed value; ``seasonal naive`` repeats the value one season
earlier; ``ARIMA`` (statsmodels, the optional extra ``forecast``) is fitted once on the training
part with a fixed small order, then filtered forward with those parameters over each test
window's history before forecasting. Results go to RUN/forecast.json, a report section and
RUN/plots/forecast.png.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fathom.data.bundle import DataInfo
from fathom.data.series import INSTALL_HINT, make_windows, window_origins
from fathom.engine.callbacks import Callback
from fathom.files import atomic_write_json

MODEL_LABEL = "neural model"

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer
    from fathom.tasks.forecast import Forecast


def origins_of_test_windows(info: DataInfo) -> np.ndarray:
    """Origins (first target index) of the dataset's test windows."""
    extra = info.extra
    val_start, test_start = extra["boundaries"]
    return window_origins(len(extra["series"]), extra["input_length"], extra["horizon"],
                          extra["stride"], val_start, test_start)["test"]  # fmt: skip


def naive_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    return np.repeat(values[origins - 1][:, None], horizon, axis=1)


def seasonal_naive_forecasts(
    values: np.ndarray, origins: np.ndarray, horizon: int, season: int
) -> np.ndarray:
    """Step k (0-based) repeats the value ``season * ceil((k + 1) / season)`` steps earlier."""
    steps = np.arange(horizon)
    lags = season * np.ceil((steps + 1) / season).astype(np.int64)
    return values[origins[:, None] + steps[None, :] - lags[None, :]]


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Small Kalman-filter matrices run fastest (and share a busy machine best) on one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def arima_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int, train_end: int,
                    order: tuple[int, int, int], seasonal_order: tuple[int, int, int, int]
                    ) -> np.ndarray:  # fmt: skip
    """ARIMA fitted on ``values[:train_end]``, then extended (same parameters) to each origin."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    with warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore")
        model = SARIMAX(values[:train_end], order=order, seasonal_order=seasonal_order)
        results = model.fit(disp=False)
        forecasts, seen = [], train_end
        for origin in origins:
            if origin > seen:
                results = results.extend(values[seen:origin])
                seen = int(origin)
            forecasts.append(results.forecast(horizon))
    return np.asarray(forecasts)


def forecast_errors(forecasts: np.ndarray, targets: np.ndarray, mase_scale: float) -> dict:
    error = forecasts - targets
    mae = float(np.mean(np.abs(error)))
    return {"mae": mae, "rmse": float(np.sqrt(np.mean(error**2))), "mase": mae / mase_scale}


@torch.no_grad()
def model_forecasts(task: Forecast, model: torch.nn.Module, origins: np.ndarray) -> np.ndarray:
    """The model's forecasts of the test windows, in original units."""
    extra, scale = task.info.extra, task.info.normalization
    values = np.asarray(extra["series"])
    scaled = (values - scale["mean"][0]) / scale["std"][0]
    inputs, _ = make_windows(scaled, extra["input_length"], extra["horizon"], origins)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = [task.predict(model, chunk.to(device)).cpu() for chunk in inputs.split(512)]
    model.train(was_training)
    return torch.cat(outputs).double().numpy()


def compare_with_baselines(task: Forecast, model: torch.nn.Module) -> dict[str, Any]:
    """Errors of the model and each baseline on the test windows, and the forecasts themselves."""
    extra = task.info.extra
    values, horizon, season = np.asarray(extra["series"]), extra["horizon"], extra["season"]
    origins = origins_of_test_windows(task.info)
    targets = values[origins[:, None] + np.arange(horizon)[None, :]]
    forecasts = {
        MODEL_LABEL: model_forecasts(task, model, origins),
        "naive": naive_forecasts(values, origins, horizon),
        f"seasonal naive (m={season})": seasonal_naive_forecasts(values, origins, horizon, season),
    }
    seasonal = (0, 1, 1, season) if task.arima_seasonal and 1 < season <= 24 else (0, 0, 0, 0)
    arima = {"order": list(task.arima_order), "seasonal_order": list(seasonal)}
    started = time.perf_counter()
    try:
        forecasts["ARIMA"] = arima_forecasts(values, origins, horizon, extra["boundaries"][0],
                                             task.arima_order, seasonal)  # fmt: skip
    except ImportError:
        arima["error"] = f"statsmodels is not installed: {INSTALL_HINT}"
    except Exception as error:  # noqa: BLE001 - a failed baseline must not fail the run
        arima["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    arima["seconds"] = round(time.perf_counter() - started, 2)
    errors = {method: forecast_errors(f, targets, extra["mase_scale"]) for method, f in forecasts.items()}  # fmt: skip
    return {"windows": len(origins), "horizon": horizon, "season": season, "origins": origins,
            "targets": targets, "forecasts": forecasts, "errors": errors, "arima": arima}  # fmt: skip


class ForecastReport(Callback):
    """At the end of training: the test-window comparison as JSON, a report section and a plot."""

    def __init__(self, run_dir: Path, task: Forecast) -> None:
        self.run_dir = Path(run_dir)
        self.task = task

    def fit_end(self, trainer: Trainer) -> None:
        model = trainer.ema.shadow if trainer.ema is not None else trainer.model
        result = compare_with_baselines(self.task, model)
        record = {key: result[key] for key in ("windows", "horizon", "season", "errors", "arima")}
        atomic_write_json(self.run_dir / "forecast.json", record)
        self._save_plot(result)
        self._save_section(result)

    def _save_plot(self, result: dict[str, Any]) -> None:
        from fathom.report.forecast_plot import plot_forecasts

        extra, horizon = self.task.info.extra, result["horizon"]
        chosen = np.arange(0, result["windows"], max(1, math.ceil(horizon / extra["stride"])))
        times = (result["origins"][chosen][:, None] + np.arange(horizon)[None, :]).ravel()
        lines = {method: (times, forecast[chosen].ravel())
                 for method, forecast in result["forecasts"].items()}  # fmt: skip
        title = f"{self.task.info.name}: {horizon}-step forecasts on the test part"
        plot_forecasts(extra["series"], extra["boundaries"][1], lines,
                       self.run_dir / "plots" / "forecast.png", title, extra.get("labels"),
                       self.task.info.target_name or "value")  # fmt: skip

    def _save_section(self, result: dict[str, Any]) -> None:
        from fathom.report import save_section

        rows = [[method, f"{e['mae']:.4g}", f"{e['rmse']:.4g}", f"{e['mase']:.3f}"]
                for method, e in result["errors"].items()]  # fmt: skip
        arima = result["arima"]
        text = (
            f"{result['windows']} test windows, horizon {result['horizon']}. MASE divides MAE by "
            f"the in-sample seasonal-naive MAE (season {result['season']}) of the training part. "
            f"ARIMA{tuple(arima['order'])}x{tuple(arima['seasonal_order'])} is fitted once on "
            "the training part and filtered forward over each window's history."
        )
        if "error" in arima:
            text += f"\n\nARIMA not shown: {arima['error']}"
        save_section(self.run_dir, "forecast", "Forecast vs baselines (test windows)", text=text,
                     headers=["method", "MAE", "RMSE", "MASE"], rows=rows,
                     images=["plots/forecast.png"])  # fmt: skip
