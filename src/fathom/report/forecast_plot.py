"""Forecast against actual values, with the baselines, for a forecasting run's test part."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fathom.report.plots import MUTED_COLOR, TEXT_COLOR, _label, _new_figure, _save

METHOD_COLORS = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#db2777")


def plot_forecasts(
    values: Sequence[float],
    test_start: int,
    forecasts: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
    title: str,
    labels: Sequence[str] | None = None,
    value_name: str = "value",
    context: int = 60,
) -> Path:
    """The series from ``context`` steps before the test part, and each method's forecasts.

    ``forecasts`` maps a method to ``(time indices, forecast values)``, e.g. consecutive
    non-overlapping multi-step windows laid end to end.
    """
    values = np.asarray(values, dtype=float)
    start = max(0, test_start - context)
    figure, (axes,) = _new_figure(10.0, 4.2)
    steps = np.arange(start, len(values))
    axes.plot(steps, values[start:], color=TEXT_COLOR, linewidth=1.6, label="actual")
    for color, (method, (times, predicted)) in zip(METHOD_COLORS, forecasts.items(), strict=False):
        style = "-" if color == METHOD_COLORS[0] else "--"
        axes.plot(times, predicted, style, color=color, linewidth=1.3, label=method)
    axes.axvline(test_start, color=MUTED_COLOR, linestyle=":", linewidth=1)
    if labels is not None and len(labels) == len(values):
        ticks = np.linspace(start, len(values) - 1, 6).astype(int)
        axes.set_xticks(ticks, [str(labels[tick]) for tick in ticks])
    axes.legend(fontsize=8.5, frameon=False, loc="best")
    _label(axes, title, "time (test part right of the dotted line)", value_name)
    return _save(figure, path)
