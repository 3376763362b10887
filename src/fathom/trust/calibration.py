"""Calibration: ECE and MCE (15 equal-width bins), NLL, Brier score, a reliability diagram, and
temperature scaling fitted on the validation split (Guo et al. 2017).

A confidence of exactly 1.0 falls in the last bin; bins are right-closed: (k/15, (k+1)/15].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fathom.errors import DataError
from fathom.trust.common import new_figure, save_figure

BINS = 15


def bin_index(confidence: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """The bin of each confidence: (k/bins, (k+1)/bins] is bin k; 0 and 1.0 go to the ends."""
    return ((confidence.double() * bins).ceil().long() - 1).clamp(0, bins - 1)


def reliability_bins(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS
) -> list[dict[str, float]]:
    """Per bin: count, mean confidence and accuracy of the top-1 predictions."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double()
    index = bin_index(confidence, bins)
    rows = []
    for k in range(bins):
        inside = index == k
        count = int(inside.sum())
        rows.append({
            "lower": k / bins, "upper": (k + 1) / bins, "count": count,
            "confidence": float(confidence[inside].double().mean()) if count else 0.0,
            "accuracy": float(correct[inside].mean()) if count else 0.0,
        })  # fmt: skip
    return rows


def calibration_metrics(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS
) -> dict[str, Any]:
    """ECE, MCE, NLL, Brier score and accuracy of class probabilities ``[N, C]``."""
    if len(probabilities) == 0 or len(probabilities) != len(labels):
        raise DataError(f"{len(probabilities)} predictions for {len(labels)} labels")
    table = reliability_bins(probabilities, labels, bins)
    total = len(labels)
    gaps = [abs(row["accuracy"] - row["confidence"]) for row in table if row["count"]]
    weights = [row["count"] / total for row in table if row["count"]]
    probabilities = probabilities.double()
    one_hot = F.one_hot(labels, probabilities.shape[1]).double()
    picked = probabilities.gather(1, labels[:, None]).clamp_min(1e-12)
    return {
        "ece": float(sum(g * w for g, w in zip(gaps, weights, strict=True))),
        "mce": float(max(gaps)),
        "nll": float(-picked.log().mean()),
        "brier": float(((probabilities - one_hot) ** 2).sum(dim=1).mean()),
        "accuracy": float((probabilities.argmax(1) == labels).double().mean()),
        "bins": table,
    }


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, iterations: int = 100) -> float:
    """The temperature T minimising the NLL of ``logits / T`` (LBFGS on log T, from T = 1)."""
    logits, labels = logits.detach().double(), labels.detach()
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_temperature], lr=0.5, max_iter=iterations, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_temperature.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_temperature.detach().exp())


def plot_reliability(curves: dict[str, list[dict[str, float]]], path: Path) -> Path:
    """Accuracy against confidence per bin for each named set of bins (e.g. before/after T)."""
    figure, (axes,) = new_figure(4.6, 4.0)
    axes.plot([0, 1], [0, 1], color="#9ca3af", linestyle="--", linewidth=1, label="perfect")
    for (name, table), color in zip(
        curves.items(), ("#ea580c", "#2563eb", "#16a34a"), strict=False
    ):
        shown = [row for row in table if row["count"]]
        axes.plot([r["confidence"] for r in shown], [r["accuracy"] for r in shown], "o-",
                  color=color, markersize=4, label=name)  # fmt: skip
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence (top-1 probability)", fontsize=9)
    axes.set_ylabel("accuracy", fontsize=9)
    axes.set_title("Reliability diagram", loc="left", fontsize=11, fontweight="bold")
    axes.legend(fontsize=8, frameon=False)
    return save_figure(figure, path)
