"""Exponential moving average of a model's weights (evaluated in place of the raw weights)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Keeps ``shadow = d * shadow + (1 - d) * weights`` after every optimizer step.

    The effective decay ``d = min(decay, (1 + t) / (10 + t))`` warms up with the update count
    ``t``, so early averages are not dominated by the initial weights (timm's rule). It depends
    on ``t`` alone, so resuming needs only the step count.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval()
        for parameter in self.shadow.parameters():
            parameter.requires_grad_(False)

    def decay_at(self, updates: int) -> float:
        return min(self.decay, (1.0 + updates) / (10.0 + updates))

    @torch.no_grad()
    def update(self, model: nn.Module, updates: int) -> None:
        """Blend in ``model``'s weights after optimizer update number ``updates`` (1-based)."""
        shadow = list(self.shadow.parameters())
        current = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(shadow, current, 1.0 - self.decay_at(updates))
        for shadow_buffer, buffer in zip(self.shadow.buffers(), model.buffers(), strict=True):
            shadow_buffer.copy_(buffer)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow.load_state_dict(state)
