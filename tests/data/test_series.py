"""Time-series windows: chronological, scaled on the training part, never leaking the future."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fathom.data
from fathom.data.series import series_bundle
from fathom.errors import DataError


def unscaled(bundle, tensor: torch.Tensor) -> torch.Tensor:
    scale = bundle.info.normalization
    return tensor.double() * scale["std"][0] + scale["mean"][0]


@pytest.mark.parametrize("stride", [1, 3])
def test_windows_never_leak_future_values_into_inputs(stride: int) -> None:
    time_index = np.arange(200, dtype=np.float64)  # each value is its own time step
    bundle = series_bundle("steps", time_index, input_length=12, horizon=4, stride=stride)
    val_start, test_start = bundle.info.extra["boundaries"]
    bounds = {"train": (0, val_start), "val": (val_start, test_start), "test": (test_start, 200)}
    for name, split in bundle.splits().items():
        inputs = unscaled(bundle, split.inputs[..., 0]).round()
        targets = unscaled(bundle, split.targets).round()
        assert len(split) > 0
        assert (inputs.amax(dim=1) < targets.amin(dim=1)).all()
        expected = inputs[:, -1:] + torch.arange(1, 5)  # the next values, contiguous
        torch.testing.assert_close(targets, expected.double())
        low, high = bounds[name]
        assert targets.min() >= low and targets.max() < high, name  # targets stay in their part
        assert (torch.diff(targets[:, 0]) == stride).all()  # in time order, never shuffled


def test_scaling_and_earlier_splits_ignore_later_values() -> None:
    values = np.sin(np.arange(300) / 5.0) * 10 + 50
    changed = values.copy()
    changed[250:] += 1000  # a shock in the test part only
    first = series_bundle("a", values, input_length=20, horizon=5)
    second = series_bundle("b", changed, input_length=20, horizon=5)
    assert first.info.normalization == second.info.normalization
    val_start = first.info.extra["boundaries"][0]
    assert first.info.normalization["mean"][0] == pytest.approx(values[:val_start].mean())
    for name in ("train", "val"):
        torch.testing.assert_close(getattr(first, name).inputs, getattr(second, name).inputs)
        torch.testing.assert_close(getattr(first, name).targets, getattr(second, name).targets)


def test_a_series_too_short_for_the_window_is_a_one_line_error() -> None:
    with pytest.raises(DataError, match=r"too short for the window: 40 values .* input_length 30"):
        series_bundle("short", np.arange(40.0), input_length=30, horizon=5)


def test_statsmodels_series_load_deterministically() -> None:
    first, second = fathom.data.load("sunspots"), fathom.data.load("sunspots")
    assert first.info.task == "forecast" and first.info.input_shape == (33, 1)
    assert len(first.info.extra["series"]) == 309
    torch.testing.assert_close(first.train.inputs, second.train.inputs)
    co2 = fathom.data.load("co2", horizon=6, test_fraction=0.25)
    assert co2.test.targets.shape[1] == 6
    assert co2.info.extra["boundaries"][1] == 526 - round(526 * 0.25)


def test_csv_series(tmp_path) -> None:
    file = tmp_path / "sales.csv"
    rows = "".join(f"2020-{i},{100 + i % 7}\n" for i in range(80))
    file.write_text("day,sales\n" + rows)
    bundle = fathom.data.load("series", path=str(file), column="sales", time_column="day",
                              input_length=14, horizon=3, season=7)  # fmt: skip
    assert bundle.info.extra["labels"][0] == "2020-0" and bundle.info.extra["season"] == 7
    with pytest.raises(DataError, match=r"no column 'sale' \(data.column\) \(did you mean 'sales'"):
        fathom.data.load("series", path=str(file), column="sale")
    file.write_text("day,sales\n1,3\n2,x\n" + rows)
    with pytest.raises(DataError, match="line 3, column 'sales': 'x' is not a number"):
        fathom.data.load("series", path=str(file), column="sales")
