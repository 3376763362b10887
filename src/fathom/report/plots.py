"""Figures of a run folder as PNGs in ``RUN/plots``: curves, learning rate, confusion matrix, predictions.

Matplotlib is used through ``Figure`` and ``FigureCanvasAgg`` only, so pyplot's global state and the
user's chosen backend are never touched.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fathom.errors import FathomError
from fathom.files import atomic_write_bytes

TRAIN_COLOR = "#2563eb"
VAL_COLOR = "#ea580c"
TEXT_COLOR = "#1f2937"
MUTED_COLOR = "#6b7280"
GRID_COLOR = "#e5e7eb"
DPI = 144
PLOT_FILES = ("loss.png", "metrics.png", "learning_rate.png", "confusion_matrix.png", "predictions.png")  # fmt: skip
NOT_METRICS = frozenset({"kind", "step", "epoch", "loss", "lr", "samples_per_second"})
_LABELS = {"loss": "Loss", "accuracy": "Accuracy", "top5_accuracy": "Top-5 accuracy", "mae": "MAE",
           "rmse": "RMSE", "mse": "MSE", "r2": "R²", "f1": "F1", "lr": "Learning rate"}  # fmt: skip


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable (with a warning)."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        warnings.warn(f"{path}: unreadable JSON ({error}); left out of the report", stacklevel=2)
        return None
    return value if isinstance(value, dict) else None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl``; a half-written line (a run in progress) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read_evaluation(run_dir: Path) -> dict[str, Any] | None:
    """``evaluation-test.json``, or ``evaluation-val.json`` when there is no test evaluation."""
    for split in ("test", "val"):
        evaluation = read_json(run_dir / f"evaluation-{split}.json")
        if evaluation is not None:
            evaluation.setdefault("split", split)
            return evaluation
    return None


def run_folder(run_dir: str | os.PathLike[str]) -> Path:
    """``run_dir`` as a Path, or a FathomError naming it when it is not a folder."""
    if not Path(run_dir).is_dir():
        raise FathomError(f"{run_dir}: no such run folder")
    return Path(run_dir)


def metric_label(name: str) -> str:
    """A readable name for a metric key: ``top5_accuracy`` -> ``Top-5 accuracy``."""
    if name in _LABELS:
        return _LABELS[name]
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def is_number(value: Any) -> bool:
    """True for ints and floats (NaN included), False for bools, None, strings and lists."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_names(records: Sequence[dict[str, Any]]) -> list[str]:
    """Numeric keys of the records that are metrics (not step, epoch, loss, lr, ...), in order seen."""
    names: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key not in NOT_METRICS and is_number(value):
                names.setdefault(key)
    return list(names)


def _split(records: Sequence[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    train = [record for record in records if record.get("kind") == "train"]
    return train, [record for record in records if record.get("kind") == "val"]


def _x_key(records: Sequence[dict[str, Any]]) -> str:
    return "epoch" if records and all(is_number(r.get("epoch")) for r in records) else "step"


def _series(records: Sequence[dict], x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Points where both keys are numbers; infinities become NaN so they show as gaps."""
    points = [(r[x_key], _first(r.get(y_key))) for r in records if is_number(r.get(x_key))]
    points = [(x, y) for x, y in points if is_number(y)]
    x_values = np.array([x for x, _ in points], dtype=float)
    y_values = np.array([y for _, y in points], dtype=float)
    y_values[~np.isfinite(y_values)] = np.nan
    return x_values, y_values


def _first(value: Any) -> Any:
    """A per-parameter-group list (e.g. learning rates) is shown by its first group."""
    return value[0] if isinstance(value, list) and value else value


def _smooth(values: np.ndarray, weight: float = 0.85) -> np.ndarray:
    """Bias-corrected exponential moving average, as TensorBoard draws noisy training curves."""
    smoothed, average, count = np.empty_like(values), 0.0, 0
    for index, value in enumerate(values):
        if math.isfinite(value):
            average, count = weight * average + (1 - weight) * value, count + 1
        smoothed[index] = average / (1 - weight**count) if count else np.nan
    return smoothed


def _new_figure(
    width: float, height: float, rows: int = 1, columns: int = 1
) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(figure)
    axes_grid = figure.subplots(rows, columns, squeeze=False)
    for axes in axes_grid.flat:
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            axes.spines[side].set_color("#9ca3af")
        axes.tick_params(colors="#4b5563", labelsize=8.5)
        axes.grid(True, color=GRID_COLOR, linewidth=0.8)
        axes.set_axisbelow(True)
    return figure, list(axes_grid.flat)


def _label(axes: Axes, title: str, x_label: str = "", y_label: str = "") -> None:
    axes.set_title(title, loc="left", fontsize=11, fontweight="bold", color=TEXT_COLOR)
    axes.set_xlabel(x_label, fontsize=9, color=MUTED_COLOR)
    axes.set_ylabel(y_label, fontsize=9, color=MUTED_COLOR)


def _save(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _draw_curves(axes: Axes, records: Sequence[dict], key: str, x_key: str) -> bool:
    """Train (raw, faint, plus smoothed when long) and val curves of ``key``; False if none."""
    train, val = _split(records)
    train_x, train_y = _series(train, x_key, key)
    val_x, val_y = _series(val, x_key, key)
    if len(train_x) > 20:
        axes.plot(train_x, train_y, color=TRAIN_COLOR, alpha=0.25, linewidth=1)
        axes.plot(train_x, _smooth(train_y), color=TRAIN_COLOR, linewidth=1.8, label="train")
    elif len(train_x):
        axes.plot(train_x, train_y, color=TRAIN_COLOR, linewidth=1.8, label="train")
    if len(val_x):
        axes.plot(
            val_x, val_y, color=VAL_COLOR, linewidth=1.8, marker="o", markersize=4, label="val"
        )
    return bool(len(train_x) or len(val_x))


def _mark_best(axes: Axes, best_epoch: float | None, x_key: str) -> None:
    if best_epoch is not None and x_key == "epoch":
        axes.axvline(best_epoch, color=MUTED_COLOR, linestyle=":", linewidth=1.2, label="best")


def _legend(axes: Axes) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(frameon=False, fontsize=8.5, loc="best")


def plot_loss(records: Sequence[dict], path: Path, best_epoch: float | None = None) -> Path | None:
    """Train and val loss against epoch (or step); None when no loss was logged."""
    x_key = _x_key(records)
    figure, (axes,) = _new_figure(5.4, 3.4)
    if not _draw_curves(axes, records, "loss", x_key):
        return None
    values = np.concatenate(
        [np.asarray(line.get_ydata(), dtype=float) for line in axes.get_lines()]
    )
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
        axes.set_yscale("log")
    _mark_best(axes, best_epoch, x_key)
    _label(axes, "Loss", x_key, "loss")
    _legend(axes)
    return _save(figure, path)


def plot_metrics(
    records: Sequence[dict], path: Path, best_epoch: float | None = None
) -> Path | None:
    """One panel per metric (accuracy, MAE, ...) with train and val curves; None when none."""
    names = metric_names(records)[:9]
    if not names:
        return None
    x_key, columns = _x_key(records), min(len(names), 3)
    rows = math.ceil(len(names) / columns)
    figure, panels = _new_figure(10.8 if columns > 1 else 5.4, 3.2 * rows, rows, columns)
    for axes, name in zip(panels, names, strict=False):
        _draw_curves(axes, records, name, x_key)
        _mark_best(axes, best_epoch, x_key)
        _label(axes, metric_label(name), x_key)
        _legend(axes)
    for axes in panels[len(names) :]:
        axes.set_visible(False)
    return _save(figure, path)


def plot_learning_rate(records: Sequence[dict], path: Path) -> Path | None:
    """Learning rate against step; None when no learning rate was logged."""
    train, _ = _split(records)
    x_key = "step" if all(is_number(r.get("step")) for r in train) else "epoch"
    steps, rates = _series(train, x_key, "lr")
    if not len(steps):
        return None
    figure, (axes,) = _new_figure(5.4, 3.4)
    axes.plot(steps, rates, color=TRAIN_COLOR, linewidth=1.8)
    axes.fill_between(steps, rates, color=TRAIN_COLOR, alpha=0.08)
    axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    axes.set_ylim(bottom=0)
    _label(axes, "Learning rate", x_key, "learning rate")
    return _save(figure, path)


def plot_confusion_matrix(
    matrix: Sequence[Sequence[float]],
    class_names: Sequence[str],
    path: Path,
    normalize: bool = True,
    title: str = "Confusion matrix",
) -> Path:
    """Heat map of true (rows) against predicted (columns) classes, annotated when small enough.

    With ``normalize`` each row is divided by its total, so cells read as per-class recall.
    """
    counts = np.asarray(matrix, dtype=float)
    size = counts.shape[0]
    totals = counts.sum(axis=1, keepdims=True)
    shown = counts / np.maximum(totals, 1e-12) if normalize else counts
    top = 1.0 if normalize else max(float(shown.max()), 1.0)
    side = min(max(3.0 + 0.32 * size, 4.2), 9.0)
    figure, (axes,) = _new_figure(side + 1.0, side)
    image = axes.imshow(shown, cmap="Blues", vmin=0, vmax=top)
    axes.grid(False)
    for spine in axes.spines.values():
        spine.set_visible(False)
    colorbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.03)
    colorbar.ax.tick_params(labelsize=8, colors="#4b5563")
    colorbar.outline.set_visible(False)
    if normalize:
        colorbar.ax.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    _class_ticks(axes, class_names, size)
    if size <= 20:
        _annotate_cells(axes, shown, counts, normalize, top)
    _label(axes, title, "predicted", "true")
    return _save(figure, path)


def _class_ticks(axes: Axes, class_names: Sequence[str], size: int) -> None:
    if size > 40:  # too many names to read: number every tenth class instead
        axes.set(xticks=range(0, size, 10), yticks=range(0, size, 10))
        return
    names = [str(name)[:16] for name in class_names]
    font = 9 if size <= 10 else 7
    rotate = any(len(name) > 3 for name in names)
    axes.set_xticks(range(size), names, fontsize=font, rotation=45 if rotate else 0,
                    ha="right" if rotate else "center", rotation_mode="anchor")  # fmt: skip
    axes.set_yticks(range(size), names, fontsize=font)
    axes.tick_params(length=0)


def _annotate_cells(
    axes: Axes, shown: np.ndarray, counts: np.ndarray, normalize: bool, top: float
) -> None:
    size = shown.shape[0]
    font = 8.5 if size <= 8 else 7 if size <= 12 else 5.5
    for row in range(size):
        for column in range(size):
            value, count = shown[row, column], int(counts[row, column])
            if normalize:
                text = f"{value:.0%}\n{count}" if size <= 10 else f"{value:.0%}"
            else:
                text = f"{count}"
            color = "white" if value > 0.55 * top else TEXT_COLOR
            axes.text(column, row, text, ha="center", va="center", fontsize=font, color=color)


def plot_predictions(
    targets: Sequence[Any], predictions: Sequence[Any], path: Path, target_name: str | None = None
) -> Path | None:
    """Predicted against true values, beside a histogram of the residuals; None when empty."""
    true = np.asarray(targets, dtype=float).ravel()
    predicted = np.asarray(predictions, dtype=float).ravel()
    if true.size != predicted.size:
        return None
    keep = np.isfinite(true) & np.isfinite(predicted)
    if not keep.any():
        return None
    true, predicted = true[keep], predicted[keep]
    figure, (scatter, histogram) = _new_figure(9.6, 4.2, 1, 2)
    scatter.scatter(true, predicted, s=14, alpha=0.6, color=TRAIN_COLOR, edgecolors="none")
    low, high = min(true.min(), predicted.min()), max(true.max(), predicted.max())
    pad = 0.04 * (high - low or 1.0)
    scatter.plot(
        [low - pad, high + pad], [low - pad, high + pad], "--", color=MUTED_COLOR, linewidth=1
    )
    scatter.set_xlim(low - pad, high + pad)
    scatter.set_ylim(low - pad, high + pad)
    spread = float(np.sum((true - true.mean()) ** 2))
    if spread > 0:
        r2 = 1 - float(np.sum((predicted - true) ** 2)) / spread
        scatter.text(0.03, 0.96, f"R² = {r2:.3f}", transform=scatter.transAxes, va="top", fontsize=9,
                     color=TEXT_COLOR, bbox={"facecolor": "white", "edgecolor": GRID_COLOR})  # fmt: skip
    name = target_name or "target"
    _label(scatter, f"Predicted vs true (n={true.size})", f"true {name}", f"predicted {name}")
    residuals = predicted - true
    bins = min(40, max(10, true.size // 10))
    histogram.hist(
        residuals, bins=bins, color=VAL_COLOR, alpha=0.85, edgecolor="white", linewidth=0.6
    )
    histogram.axvline(0, color=MUTED_COLOR, linestyle="--", linewidth=1)
    _label(histogram, "Residuals (predicted − true)", "residual", "count")
    return _save(figure, path)


def _square_matrix(value: Any) -> np.ndarray | None:
    try:
        matrix = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    ok = matrix.ndim == 2 and matrix.shape[0] == matrix.shape[1] and matrix.size > 0
    return matrix if ok else None


def _plot_evaluation(evaluation: dict[str, Any], run: dict[str, Any], plots: Path) -> Path | None:
    data = run.get("data") if isinstance(run.get("data"), dict) else {}
    split = evaluation.get("split", "test")
    matrix = _square_matrix(evaluation.get("confusion_matrix"))
    if matrix is not None:
        names = evaluation.get("class_names") or data.get("class_names") or []
        if len(names) != len(matrix):
            names = [str(index) for index in range(len(matrix))]
        return plot_confusion_matrix(matrix, names, plots / "confusion_matrix.png",
                                     title=f"Confusion matrix ({split}, row-normalised)")  # fmt: skip
    sample = evaluation.get("predictions_sample")
    if isinstance(sample, dict):
        return plot_predictions(sample.get("target") or [], sample.get("prediction") or [],
                                plots / "predictions.png", data.get("target_name"))  # fmt: skip
    return None


def make_plots(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Write every figure the run folder has data for into ``RUN/plots``; returns their paths.

    Files that are missing (a run in progress, stopped early) just mean fewer figures.
    """
    run_dir = run_folder(run_dir)
    plots = run_dir / "plots"
    records = read_metrics(run_dir / "metrics.jsonl")
    run = read_json(run_dir / "run.json") or {}
    best = run.get("best") if isinstance(run.get("best"), dict) else {}
    best_epoch = float(best["epoch"]) if is_number(best.get("epoch")) else None
    written = [
        plot_loss(records, plots / "loss.png", best_epoch),
        plot_metrics(records, plots / "metrics.png", best_epoch),
        plot_learning_rate(records, plots / "learning_rate.png"),
    ]
    evaluation = read_evaluation(run_dir)
    if evaluation is not None:
        written.append(_plot_evaluation(evaluation, run, plots))
    return [path for path in written if path is not None]
