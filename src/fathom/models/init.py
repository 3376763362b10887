"""Weight initialisation schemes by name: ``initialize(model, "kaiming_normal")``.

A scheme re-initialises the weights of every linear and convolution layer (transposed too) and
zeroes their biases. Norm layers are left as the model built them (weight 1 and bias 0 unless
the model chose otherwise, e.g. a zero-initialised last batch norm in a residual branch), and so
is every other layer. ``"default"`` leaves the whole model untouched.
"""

from __future__ import annotations

import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.registry import INITIALIZATIONS

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


def _leave_as_built(weight: torch.Tensor) -> None:
    """``default``: each layer keeps the initialisation its constructor gave it."""


for _name, _function, _description in (
    ("default", _leave_as_built, "leave every layer as its constructor initialised it"),
    ("xavier_uniform", nn.init.xavier_uniform_, "Glorot & Bengio 2010, uniform"),
    ("xavier_normal", nn.init.xavier_normal_, "Glorot & Bengio 2010, normal"),
    ("glorot_uniform", nn.init.xavier_uniform_, "same as xavier_uniform"),
    ("glorot_normal", nn.init.xavier_normal_, "same as xavier_normal"),
    ("kaiming_uniform", _kaiming_uniform, "He et al. 2015 (fan in, ReLU), uniform"),
    ("kaiming_normal", _kaiming_normal, "He et al. 2015 (fan in, ReLU), normal"),
    ("he_uniform", _kaiming_uniform, "same as kaiming_uniform"),
    ("he_normal", _kaiming_normal, "same as kaiming_normal"),
    ("orthogonal", nn.init.orthogonal_, "orthogonal matrices (Saxe et al. 2014)"),
):
    INITIALIZATIONS.register(_name, _function, description=_description)


def initialize(model: nn.Module, scheme: str) -> nn.Module:
    """Re-initialise ``model``'s linear and convolution weights with ``scheme``; return ``model``."""
    if scheme not in INITIALIZATIONS:
        raise ConfigError(f"model.init: {INITIALIZATIONS.unknown_message(scheme)}")
    function = INITIALIZATIONS.get(scheme)
    if function is _leave_as_built:
        return model
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, WEIGHTED_LAYERS):
                function(module.weight)
                if module.bias is not None:
                    module.bias.zero_()
    return model
