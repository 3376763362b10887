"""Temperature scaling (Guo et al. 2017) as a model transform: logits divided by one fitted T.

``fathom.trust.calibration`` fits T on the validation split; the transform ``temperature`` in
the run's lineage re-creates the wrapper on load, so every prediction of the calibrated run is
scaled. T is both the transform's parameter and a buffer saved with the weights.
"""

from __future__ import annotations

import torch
from torch import nn

from fathom.errors import ConfigError


class TemperatureScaled(nn.Module):
    """``model(x) / temperature``: the same ranking of classes, softer or sharper probabilities."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs) / self.temperature.to(torch.float32)


def temperature_scale(model: nn.Module, temperature: float) -> nn.Module:
    """Wrap ``model`` so its logits are divided by ``temperature`` (> 0)."""
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    return TemperatureScaled(model, temperature)
