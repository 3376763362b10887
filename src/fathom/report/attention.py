"""Attention maps as a figure: one panel per head, queries down, keys across."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

MAX_LABELS = 48  # above this many tokens the axes show no token labels


def plot_attention(
    weights: torch.Tensor,
    labels: Sequence[str],
    path: Path,
    title: str = "Attention",
    row_labels: Sequence[str] | None = None,
) -> Path:
    """Save ``weights`` [heads, queries, keys] of one example as a PNG at ``path``; ``labels``
    name the keys (and the queries, unless ``row_labels`` does, as in cross-attention)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    heads = int(weights.shape[0])
    columns = min(heads, 4)
    rows = -(-heads // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 3.2 * rows), squeeze=False, layout="constrained"
    )
    rows = labels if row_labels is None else row_labels
    readable = max(len(labels), len(rows)) <= MAX_LABELS
    shown = [repr(label)[1:-1] for label in labels] if readable else None
    shown_rows = [repr(label)[1:-1] for label in rows] if readable else None
    for head, panel in enumerate(axes.flat):
        if head >= heads:
            panel.set_visible(False)
            continue
        panel.imshow(weights[head].float().cpu().numpy(), cmap="viridis", vmin=0.0)
        panel.set_title(f"head {head + 1}", fontsize=9)
        panel.set_xticks([])
        panel.set_yticks([])
        # token labels on the outer panels only (the bottom row's keys, the left column's
        # queries): every panel has the same tokens, and text is most of the drawing time
        if shown is not None and head + columns >= heads:  # no panel below this one
            panel.set_xticks(range(len(shown)), shown, fontsize=6, rotation=90)
        if shown_rows is not None and head % columns == 0:
            panel.set_yticks(range(len(shown_rows)), shown_rows, fontsize=6)
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def save_attention_section(
    run_dir: Path,
    model: torch.nn.Module,
    inputs: torch.Tensor,
    labels: Sequence[str],
    title: str,
    text: str,
    prefix: str = "[CLS]",
    row_labels: Sequence[str] | None = None,
) -> None:
    """Plot the last layer's ``model.attention_maps(inputs)`` for one example into the report;
    ``prefix`` labels a position the model puts before the tokens (a CLS token)."""
    from fathom.report.sections import save_section

    was_training = model.training
    model.eval()
    try:
        maps = model.attention_maps(inputs)  # type: ignore[operator]
    finally:
        model.train(was_training)
    if maps[-1].shape[-1] == len(labels) + 1:
        labels = [prefix, *labels]
    path = run_dir / "plots" / "attention.png"
    plot_attention(maps[-1][0], labels, path, title, row_labels)
    save_section(run_dir, "attention", "Attention map", text=text, images=["plots/attention.png"])
