"""A federated run at a glance: the server's metric per round, how often each client took part,
and the class histogram of each client's part of the data (the split's skew)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from fathom.report.plots import VAL_COLOR, _label, _new_figure, _save

CLASS_COLORS = ("#2563eb", "#ea580c", "#16a34a", "#dc2626", "#9333ea",
                "#8c564b", "#db2777", "#6b7280", "#ca8a04", "#0891b2")  # fmt: skip


def plot_federated(
    rounds: Sequence[Mapping[str, Any]],
    participation: Sequence[int],
    histogram: Sequence[Sequence[int]],
    metric: str,
    path: Path,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Three panels: ``metric`` per round, rounds each client took part in, and each client's
    examples per class (stacked bars; the classes past ten share the last colour)."""
    figure, (curve, taken, classes) = _new_figure(12.6, 3.4, 1, 3)
    numbers = [entry["round"] for entry in rounds]
    values = [entry.get(metric, float("nan")) for entry in rounds]
    curve.plot(numbers, values, color=VAL_COLOR, linewidth=1.6,
               marker="o" if len(numbers) <= 30 else None, markersize=3.5)  # fmt: skip
    _label(curve, f"Test {metric} per round", "round", metric)
    clients = np.arange(len(participation))
    taken.bar(clients, participation, color="#2563eb", width=0.85)
    _label(taken, "Participation", "client", "rounds taken part in")
    counts = np.asarray(histogram, dtype=float).reshape(len(participation), -1)
    bottom = np.zeros(len(clients))
    for index in range(counts.shape[1]):
        name = class_names[index] if class_names and index < len(class_names) else str(index)
        color = CLASS_COLORS[min(index, len(CLASS_COLORS) - 1)]
        classes.bar(clients, counts[:, index], bottom=bottom, color=color, width=0.85,
                    label=name if index < len(CLASS_COLORS) else None)  # fmt: skip
        bottom += counts[:, index]
    _label(classes, "Examples per class", "client", "examples")
    for axes in (curve, taken, classes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if counts.shape[1] <= len(CLASS_COLORS):
        classes.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(figure, path)
