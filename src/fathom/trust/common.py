"""What the trust measures share: a run's split as tensors, logits in batches, a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from fathom.assemble import load_data
from fathom.data.bundle import Split
from fathom.errors import ConfigError, FathomError, closest
from fathom.runs import Run

DPI = 144
SPLITS = ("train", "val", "test")


def require_classifier(run: Run, what: str) -> None:
    """A one-line ConfigError unless ``run`` is a classifier."""
    if not run.task.is_classifier:
        raise ConfigError(
            f"{what} needs a classifier run; {run.path or 'this run'} is a {run.task.name} run"
        )


def split_tensors(run: Run, split: str, limit: int | None = None) -> Split:
    """The examples of ``split`` (model inputs, labels, groups), the first ``limit`` of them."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}'{closest(split, SPLITS)}")
    if run.data is None:
        run.data = load_data(run.config)
    chosen = getattr(run.data, split)
    if chosen is None:
        hint = " (train it with data.val_fraction=0.1)" if split == "val" else ""
        raise FathomError(f"run {run.path} has no {split} split{hint}")
    if not isinstance(chosen, Split):
        raise FathomError(
            f"the {split} split is streamed from disk; trust measures need it in memory"
        )
    if limit is not None and limit < len(chosen):
        chosen = chosen.subset(torch.arange(limit))
    return chosen


def model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def logits_of(model: nn.Module, inputs: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The model's float logits for ``inputs``, in eval mode, in batches (on the CPU)."""
    model.eval()
    device = model_device(model)
    chunks = [model(chunk.to(device)).float().cpu() for chunk in inputs.split(batch_size)]
    return torch.cat(chunks)


def new_figure(width: float, height: float, columns: int = 1) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, columns, squeeze=False)[0]
    for each in axes:
        for side in ("top", "right"):
            each.spines[side].set_visible(False)
        each.grid(True, color="#e5e7eb", linewidth=0.8)
        each.set_axisbelow(True)
        each.tick_params(labelsize=8.5)
    return figure, axes


def save_figure(figure: Figure, path: Path) -> Path:
    """The figure as a PNG at the card's resolution (diagnosis.plots writes it atomically)."""
    from fathom.diagnosis.plots import save_figure as write_png

    return write_png(figure, path, dpi=DPI)
