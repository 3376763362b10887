"""Figures of explanations: attribution heatmaps, filters and feature maps, attention, top losses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fathom.diagnosis.plots import DPI, save_figure

MAX_ROWS = 8


def _grid(rows: int, columns: int, cell: float = 1.9) -> tuple[Figure, np.ndarray]:
    figure = Figure(figsize=(columns * cell, rows * cell + 0.3), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    return figure, axes


def image_array(image: torch.Tensor) -> np.ndarray:
    """A [C, H, W] tensor as an array matplotlib shows (grey or RGB), scaled to [0, 1]."""
    values = image.detach().float().cpu()
    values = (values - values.min()) / (values.max() - values.min()).clamp_min(1e-12)
    if values.shape[0] == 3:
        return values.permute(1, 2, 0).numpy()
    return values.mean(dim=0).numpy()


def _heat(attribution: torch.Tensor) -> np.ndarray:
    values = attribution.detach().float().cpu()
    return values.abs().sum(dim=0).numpy() if values.dim() == 3 else values.abs().numpy()


def plot_attributions(
    display: torch.Tensor, attributions: torch.Tensor, titles: Sequence[str], method: str,
    path: Path, feature_names: Sequence[str] | None = None,
) -> Path:  # fmt: skip
    """Images: input, heatmap and overlay per row; tables: bars of the largest attributions."""
    count = min(len(display), MAX_ROWS)
    if display.dim() == 4:
        figure, axes = _grid(count, 3)
        for row in range(count):
            picture, heat = image_array(display[row]), _heat(attributions[row])
            axes[row, 0].imshow(picture, cmap="gray")
            axes[row, 0].set_title(titles[row], fontsize=8)
            axes[row, 1].imshow(heat, cmap="inferno")
            axes[row, 2].imshow(picture, cmap="gray")
            axes[row, 2].imshow(heat, cmap="jet", alpha=0.45)
        axes[0, 1].set_title(method, fontsize=8)
        return save_figure(figure, path)
    figure, axes = _grid(count, 1, cell=3.0)
    for row in range(count):
        values = attributions[row].flatten().cpu().numpy()
        names = list(feature_names or [str(i) for i in range(len(values))])
        top = np.argsort(-np.abs(values))[:15][::-1]
        colors = ["#2563eb" if values[i] >= 0 else "#ea580c" for i in top]
        axes[row, 0].barh(range(len(top)), values[top], color=colors)
        axes[row, 0].set_yticks(range(len(top)), [names[i] for i in top], fontsize=7)
        axes[row, 0].set_title(f"{titles[row]} · {method}", fontsize=8)
    return save_figure(figure, path)


def plot_filters(filters: torch.Tensor, maps: torch.Tensor, path: Path) -> Path:
    """First-layer filters (top rows) and their feature maps for one input (bottom rows)."""
    shown = min(len(filters), 32)
    columns = min(8, shown)
    filter_rows = math.ceil(shown / columns)
    map_rows = math.ceil(min(len(maps), 32) / columns)
    figure, axes = _grid(filter_rows + map_rows, columns, cell=1.2)
    for index in range(shown):
        axis = axes[index // columns, index % columns]
        axis.imshow(image_array(filters[index]), cmap="gray", interpolation="nearest")
    for index in range(min(len(maps), 32)):
        axis = axes[filter_rows + index // columns, index % columns]
        axis.imshow(maps[index].numpy(), cmap="viridis")
    axes[0, 0].set_title("filters", fontsize=8, loc="left")
    axes[filter_rows, 0].set_title("feature maps", fontsize=8, loc="left")
    for axis in axes.flat:
        if not axis.images:
            axis.set_axis_off()
    return save_figure(figure, path)


def plot_attention(maps: list[torch.Tensor], path: Path) -> Path:
    """Head-averaged attention of the first input, one panel per layer."""
    columns = min(4, len(maps))
    rows = math.ceil(len(maps) / columns)
    figure, axes = _grid(rows, columns, cell=2.4)
    for index, layer in enumerate(maps):
        axis = axes[index // columns, index % columns]
        axis.imshow(layer[0].mean(dim=0).numpy(), cmap="viridis")
        axis.set_title(f"layer {index + 1}", fontsize=8)
        axis.set_xlabel("keys", fontsize=7)
        axis.set_ylabel("queries", fontsize=7)
    for axis in axes.flat[len(maps) :]:
        axis.set_axis_off()
    return save_figure(figure, path)


def plot_top_losses(
    display: torch.Tensor, examples: list[dict[str, Any]], names: Sequence[str], path: Path
) -> Path | None:
    """The highest-loss images with their true and predicted classes."""
    if display.dim() != 4 or not examples:
        return None
    columns = min(4, len(examples))
    rows = math.ceil(len(examples) / columns)
    figure, axes = _grid(rows, columns, cell=2.0)
    for index, example in enumerate(examples):
        axis = axes[index // columns, index % columns]
        axis.imshow(image_array(display[example["index"]]), cmap="gray")
        axis.set_title(
            f"true {names[example['label']]} · pred {names[example['predicted']]}\n"
            f"p={example['probability']:.2f} loss={example['loss']:.2f}",
            fontsize=7,
        )
    for axis in axes.flat[len(examples) :]:
        axis.set_axis_off()
    return save_figure(figure, path)
