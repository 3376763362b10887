"""Diagnostics figures: per-layer activation and gradient statistics over time, gradient flow."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fathom.files import atomic_write_bytes

DPI = 120
MAX_LINES = 12


def new_figure(width: float, height: float, columns: int = 1) -> tuple[Figure, list[Any]]:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, columns, squeeze=False)
    for axis in axes.flat:
        axis.grid(True, color="#e5e7eb", linewidth=0.8)
        axis.set_axisbelow(True)
        for side in ("top", "right"):
            axis.spines[side].set_visible(False)
    return figure, list(axes.flat)


def save_figure(figure: Figure, path: Path, dpi: int = DPI) -> Path:
    """The figure as a PNG at ``path``, written atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _series(samples: list[dict[str, Any]], key: str) -> dict[str, tuple[list[int], list[float]]]:
    lines: dict[str, tuple[list[int], list[float]]] = {}
    for sample in samples:
        for name, stats in sample.get("layers", {}).items():
            value = stats.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                steps, values = lines.setdefault(name, ([], []))
                steps.append(sample["step"])
                values.append(value)
    return lines


def _thin(names: list[str]) -> list[str]:
    """At most MAX_LINES layers, spread from first to last."""
    if len(names) <= MAX_LINES:
        return names
    step = (len(names) - 1) / (MAX_LINES - 1)
    return [names[round(i * step)] for i in range(MAX_LINES)]


def _over_time(axis: Any, lines: dict, title: str, log: bool) -> bool:
    names = _thin(list(lines))
    for index, name in enumerate(names):
        steps, values = lines[name]
        color = (index / max(1, len(names) - 1), 0.35, 1 - index / max(1, len(names) - 1))
        axis.plot(steps, values, label=name, color=color, linewidth=1.2)
    if log and any(v > 0 for _, values in lines.values() for v in values):
        axis.set_yscale("log")
    axis.set_title(title, loc="left", fontsize=10, fontweight="bold")
    axis.set_xlabel("step", fontsize=9)
    return bool(names)


def plot_statistics(samples: list[dict[str, Any]], path: Path) -> Path | None:
    """Activation std and gradient norm per layer over training (dark blue: first layers)."""
    activations, gradients = _series(samples, "std"), _series(samples, "grad_norm")
    if not activations and not gradients:
        return None
    figure, axes = new_figure(11, 3.8, columns=2)
    _over_time(axes[0], activations, "Activation std per layer", log=True)
    _over_time(axes[1], gradients, "Gradient norm per layer", log=True)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside right center", fontsize=7, frameon=False)
    return save_figure(figure, path)


def plot_gradient_flow(samples: list[dict[str, Any]], path: Path) -> Path | None:
    """Mean and maximum gradient norm of each weighted layer, first layer on the left."""
    gradients = _series(samples, "grad_norm")
    if not gradients:
        return None
    names = list(gradients)
    means = [sum(values) / len(values) for _, values in gradients.values()]
    peaks = [max(values) for _, values in gradients.values()]
    figure, axes = new_figure(max(6.0, 0.35 * len(names) + 2), 3.8)
    positions = range(len(names))
    axes[0].bar(positions, peaks, color="#93c5fd", label="max")
    axes[0].bar(positions, means, color="#2563eb", label="mean")
    axes[0].set_yscale("log")
    axes[0].set_xticks(list(positions), names, rotation=70, ha="right", fontsize=7)
    axes[0].set_title("Gradient flow (norm per layer)", loc="left", fontsize=10, fontweight="bold")
    axes[0].legend(fontsize=8, frameon=False)
    return save_figure(figure, path)


def plot_activation_health(samples: list[dict[str, Any]], path: Path) -> Path | None:
    """Dead-ReLU and saturation fractions per activation layer over training."""
    dead, saturated = _series(samples, "dead"), _series(samples, "saturated")
    if not dead and not saturated:
        return None
    figure, axes = new_figure(7, 3.5)
    _over_time(
        axes[0],
        {**dead, **saturated},
        "Dead (ReLU) / saturated (sigmoid, tanh) fraction",
        log=False,
    )
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=7, frameon=False)
    return save_figure(figure, path)


def plot_diagnostics(records: list[dict[str, Any]], folder: Path) -> list[Path]:
    samples = [record for record in records if record.get("kind") == "sample"]
    made = [
        plot_statistics(samples, folder / "diagnostics_layers.png"),
        plot_gradient_flow(samples, folder / "diagnostics_gradient_flow.png"),
        plot_activation_health(samples, folder / "diagnostics_activations.png"),
    ]
    return [path for path in made if path is not None]
