"""Weight initialisation schemes by name: ``initialize(model, "kaiming_normal")``.

A scheme re-initialises the weights of every linear and convolution layer (transposed too) and
zeroes their biases. Norm layers are left as the model built them (weight 1 and bias 0 unless
the model chose otherwise, e.g. a zero-initialised last batch norm in a residual branch), and so
is every other layer. ``"default"`` leaves the whole model untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fathom.errors import ConfigError, closest

WEIGHTED_LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def _kaiming_uniform(weight: torch.Tensor) -> None:
    nn.init.kaiming_uniform_(weight, mode="fan_in", nonlinearity="relu")


def _kaiming_normal(weight: torch.Tensor) -> None:
    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")


INITIALIZERS: dict[str, Callable[[torch.Tensor], object] | None] = {
    "default": None,
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "glorot_uniform": nn.init.xavier_uniform_,
    "glorot_normal": nn.init.xavier_normal_,
    "kaiming_uniform": _kaiming_uniform,
    "kaiming_normal": _kaiming_normal,
    "he_uniform": _kaiming_uniform,
    "he_normal": _kaiming_normal,
    "orthogonal": nn.init.orthogonal_,
}
"""Scheme name → function re-initialising one weight tensor in place (``None``: leave as built)."""


def initialize(model: nn.Module, scheme: str) -> nn.Module:
    """Re-initialise ``model``'s linear and convolution weights with ``scheme``; return ``model``."""
    if scheme not in INITIALIZERS:
        hint = closest(scheme, INITIALIZERS) or f" (choose from {', '.join(INITIALIZERS)})"
        raise ConfigError(f"model.init: unknown scheme '{scheme}'{hint}")
    function = INITIALIZERS[scheme]
    if function is None:
        return model
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, WEIGHTED_LAYERS):
                function(module.weight)
                if module.bias is not None:
                    module.bias.zero_()
    return model
