"""Test-time augmentation: the views of an image batch that a classifier's predictions average.

``tta_views(inputs, ["flip", "translate"])`` returns weighted views of a batch (N, C, H, W) whose
weights sum to 1. ``flip`` adds the mirror image of every view (each half the weight);
``translate`` replaces the batch by itself (weight 1/2) and two copies shifted one pixel up-left
and down-right with reflected borders (1/4 each), as airbench does. No views: the batch alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from fathom.errors import ConfigError, closest

TTA_VIEWS = ("flip", "translate")


def check_tta(views: Sequence[str] | None) -> tuple[str, ...]:
    """The view names as a tuple; an unknown name is a ConfigError naming ``task.tta``."""
    if views is None:
        return ()
    if isinstance(views, str) or not isinstance(views, Sequence):
        raise ConfigError(f"task.tta must be a list of views like [flip, translate], got {views!r}")
    for view in views:
        if view not in TTA_VIEWS:
            hint = closest(str(view), TTA_VIEWS) or f" (choose from {', '.join(TTA_VIEWS)})"
            raise ConfigError(f"task.tta: unknown view '{view}'{hint}")
    return tuple(dict.fromkeys(views))


def translated(inputs: torch.Tensor, pixels: int = 1) -> list[torch.Tensor]:
    """Two copies shifted by ``pixels`` up-left and down-right, borders reflected."""
    height, width = inputs.shape[-2:]
    mode = "reflect" if min(height, width) > pixels else "replicate"
    padded = F.pad(inputs, (pixels,) * 4, mode=mode)
    shift = 2 * pixels
    return [padded[..., :height, :width], padded[..., shift:, shift:]]


def tta_views(inputs: torch.Tensor, views: Sequence[str]) -> list[tuple[torch.Tensor, float]]:
    """Weighted views of ``inputs`` (weights sum to 1); needs image batches for any view."""
    weighted = [(inputs, 1.0)]
    if not views:
        return weighted
    if inputs.dim() != 4:
        raise ConfigError(
            f"task.tta needs image batches (N, C, H, W), got shape {list(inputs.shape)}"
        )
    if "translate" in views:
        weighted = [(inputs, 0.5)] + [(view, 0.25) for view in translated(inputs)]
    if "flip" in views:
        weighted = [(view, weight / 2) for original, weight in weighted
                    for view in (original, original.flip(3))]  # fmt: skip
    return weighted
