"""Time series for forecasting: real series shipped with statsmodels, and your own CSV column.

A series becomes sliding windows: ``input_length`` past values in, the next ``horizon`` values
out, one window every ``stride`` steps. Splits are chronological (train, then val, then test, by
the windows' *targets*; never shuffled across time), so a validation or test window may look
back into earlier parts for its inputs but never sees a value after its own targets. Values are
scaled with the mean and standard deviation of the training part only (``info.normalization``;
``finalize`` leaves a dataset that scaled itself alone). ``info.extra`` keeps the raw series and
the window settings, so the forecast task can rebuild the test windows for its baselines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.data.tabular import parse_numbers, read_csv_rows
from fathom.errors import ConfigError, DataError, closest

INSTALL_HINT = "pip install 'fathom-dl[forecast]'"


def _statsmodels_datasets() -> Any:
    try:
        import statsmodels.datasets as datasets
    except ImportError:
        raise DataError(f"this dataset ships with statsmodels: {INSTALL_HINT}") from None
    return datasets


def make_windows(
    values: np.ndarray, input_length: int, horizon: int, origins: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows whose targets start at each of ``origins``: inputs ``[N, input_length, 1]``,
    targets ``[N, horizon]``; inputs are the ``input_length`` values just before the origin."""
    steps_in = np.arange(-input_length, 0)
    steps_out = np.arange(horizon)
    inputs = values[origins[:, None] + steps_in[None, :]]
    targets = values[origins[:, None] + steps_out[None, :]]
    return (
        torch.from_numpy(inputs.astype(np.float32)).unsqueeze(-1),
        torch.from_numpy(targets.astype(np.float32)),
    )


def split_boundaries(count: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Indices where the validation and the test parts of a series of ``count`` values begin."""
    test_start = count - int(round(count * test_fraction))
    val_start = test_start - int(round(count * val_fraction))
    return val_start, test_start


def window_origins(
    count: int, input_length: int, horizon: int, stride: int, val_start: int, test_start: int
) -> dict[str, np.ndarray]:
    """Origins (index of a window's first target) per split: every target of a split's windows
    lies inside that split's part of the series."""
    parts = {"train": (input_length, val_start), "val": (val_start, test_start)}
    parts["test"] = (test_start, count)
    origins = {}
    for name, (start, end) in parts.items():
        first = max(start, input_length)
        origins[name] = np.arange(first, end - horizon + 1, stride, dtype=np.int64)
    return origins


def seasonal_naive_scale(train_values: np.ndarray, season: int) -> float:
    """Mean absolute error of the in-sample seasonal-naive forecast: the MASE denominator."""
    lag = max(1, season)
    if len(train_values) <= lag:
        raise DataError(
            f"the training part has {len(train_values)} values, too few for season {lag}"
        )
    return float(np.mean(np.abs(train_values[lag:] - train_values[:-lag]))) or 1.0


def series_bundle(
    name: str,
    values: np.ndarray,
    *,
    input_length: int,
    horizon: int,
    stride: int = 1,
    season: int = 1,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    labels: list[str] | None = None,
    target_name: str = "value",
) -> DataBundle:
    """Chronological, scaled sliding-window splits of a 1-D series (see the module docstring)."""
    for key, value in {"input_length": input_length, "horizon": horizon, "stride": stride}.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"data.{key} must be a positive integer, got {value!r}")
    if not isinstance(season, int) or season < 1:
        raise ConfigError(f"data.season must be a positive integer (1: no season), got {season!r}")
    values = np.asarray(values, dtype=np.float64)
    val_start, test_start = split_boundaries(len(values), val_fraction, test_fraction)
    origins = window_origins(len(values), input_length, horizon, stride, val_start, test_start)
    _check_lengths(name, len(values), input_length, horizon, val_start, test_start, origins)
    train_part = values[:val_start]
    mean, std = float(train_part.mean()), float(train_part.std()) or 1.0
    scaled = (values - mean) / std
    splits = {split: Split(*make_windows(scaled, input_length, horizon, starts))
              for split, starts in origins.items()}  # fmt: skip
    extra = {
        "target_size": horizon,
        "input_length": input_length,
        "horizon": horizon,
        "stride": stride,
        "season": season,
        "boundaries": [val_start, test_start],
        "mase_scale": seasonal_naive_scale(train_part, season),
        "series": [float(value) for value in values],
        "labels": labels,
    }
    info = DataInfo(
        name=name,
        task="forecast",
        input_shape=(input_length, 1),
        feature_names=[target_name],
        target_name=target_name,
        normalization={"mean": [mean], "std": [std]},
        extra=extra,
    )
    return DataBundle(info, splits["train"], splits["val"], splits["test"])


def _check_lengths(
    name: str,
    count: int,
    input_length: int,
    horizon: int,
    val_start: int,
    test_start: int,
    origins: dict[str, np.ndarray],
) -> None:
    empty = [split for split, starts in origins.items() if len(starts) == 0]
    if empty:
        raise DataError(
            f"series '{name}' is too short for the window: {count} values split into train "
            f"{val_start}, val {test_start - val_start}, test {count - test_start}, but a window "
            f"needs input_length {input_length} + horizon {horizon} values in the training part "
            f"and horizon {horizon} in val and test (no {', '.join(empty)} windows); "
            "lower data.input_length or data.horizon"
        )


# ---------------------------------------------------------------- the series themselves
def sunspots(root: Path, download: bool = True, input_length: int = 33, horizon: int = 5,
             stride: int = 1, season: int = 11, val_fraction: float = 0.1,
             test_fraction: float = 0.2) -> DataBundle:  # fmt: skip
    """Yearly mean sunspot numbers 1700-2008 (statsmodels; season 11: the solar cycle)."""
    frame = _statsmodels_datasets().sunspots.load_pandas().data
    labels = [str(int(year)) for year in frame["YEAR"]]
    return series_bundle("sunspots", frame["SUNACTIVITY"].to_numpy(), input_length=input_length,
                         horizon=horizon, stride=stride, season=season, val_fraction=val_fraction,
                         test_fraction=test_fraction, labels=labels, target_name="sunspots")  # fmt: skip


def co2(root: Path, download: bool = True, frequency: str = "monthly", input_length: int = 36,
        horizon: int = 12, stride: int = 1, season: int | None = None, val_fraction: float = 0.1,
        test_fraction: float = 0.2) -> DataBundle:  # fmt: skip
    """Mauna Loa CO2 1958-2001 (statsmodels), monthly means (or weekly); gaps interpolated."""
    if frequency not in ("monthly", "weekly"):
        hint = closest(frequency, ["monthly", "weekly"]) or " (choose monthly or weekly)"
        raise ConfigError(f"data.frequency: unknown frequency '{frequency}'{hint}")
    column = _statsmodels_datasets().co2.load_pandas().data["co2"]
    if frequency == "monthly":
        column = column.resample("MS").mean()
    column = column.interpolate(limit_direction="both")
    labels = [stamp.strftime("%Y-%m-%d") for stamp in column.index]
    return series_bundle("co2", column.to_numpy(), input_length=input_length, horizon=horizon,
                         stride=stride, season=season or (12 if frequency == "monthly" else 52),
                         val_fraction=val_fraction, test_fraction=test_fraction, labels=labels,
                         target_name="co2 (ppm)")  # fmt: skip


def elnino(root: Path, download: bool = True, input_length: int = 36, horizon: int = 12,
           stride: int = 1, season: int = 12, val_fraction: float = 0.1,
           test_fraction: float = 0.2) -> DataBundle:  # fmt: skip
    """Monthly El Niño sea-surface temperatures 1950-2010 (statsmodels)."""
    frame = _statsmodels_datasets().elnino.load_pandas().data
    values = frame.drop(columns="YEAR").to_numpy().reshape(-1)
    labels = [f"{int(year)}-{month:02d}" for year in frame["YEAR"] for month in range(1, 13)]
    return series_bundle("elnino", values, input_length=input_length, horizon=horizon,
                         stride=stride, season=season, val_fraction=val_fraction,
                         test_fraction=test_fraction, labels=labels, target_name="temperature")  # fmt: skip


def nile(root: Path, download: bool = True, input_length: int = 10, horizon: int = 3,
         stride: int = 1, season: int = 1, val_fraction: float = 0.1,
         test_fraction: float = 0.2) -> DataBundle:  # fmt: skip
    """Yearly Nile flow at Aswan 1871-1970 (statsmodels; 100 values)."""
    frame = _statsmodels_datasets().nile.load_pandas().data
    labels = [str(int(year)) for year in frame["year"]]
    return series_bundle("nile", frame["volume"].to_numpy(), input_length=input_length,
                         horizon=horizon, stride=stride, season=season, val_fraction=val_fraction,
                         test_fraction=test_fraction, labels=labels, target_name="volume")  # fmt: skip


def csv_series(root: Path, download: bool = True, path: str | None = None,
               column: str | None = None, time_column: str | None = None, input_length: int = 24,
               horizon: int = 6, stride: int = 1, season: int = 1, val_fraction: float = 0.1,
               test_fraction: float = 0.2, delimiter: str = ",") -> DataBundle:  # fmt: skip
    """Your series: ``column`` of the CSV file ``path``, rows in time order (oldest first).

    ``time_column`` (optional) labels the time axis of the plots.
    """
    if not path or not column:
        raise ConfigError(
            "dataset 'series' needs data.path (a CSV file) and data.column (the series' column)"
        )
    file = Path(path).expanduser()
    header, rows, lines = read_csv_rows(file, delimiter)
    for key, wanted in (("column", column), ("time_column", time_column)):
        if wanted is not None and wanted not in header:
            raise DataError(
                f"{file}: no column '{wanted}' (data.{key}){closest(wanted, header)}; "
                f"the header has: {', '.join(header[:20])}"
            )
    raw = [row[header.index(column)] for row in rows]
    values = parse_numbers(raw)
    if np.isnan(values).any():
        row = int(np.argmax(np.isnan(values)))
        raise DataError(
            f"{file} line {lines[row]}, column '{column}': '{raw[row]}' is not a number"
        )
    labels = [row[header.index(time_column)] for row in rows] if time_column else None
    return series_bundle(file.stem, values, input_length=input_length, horizon=horizon,
                         stride=stride, season=season, val_fraction=val_fraction,
                         test_fraction=test_fraction, labels=labels, target_name=column)  # fmt: skip
