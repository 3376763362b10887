"""Multilayer perceptron: flatten, then blocks of linear → (batch norm) → activation → (dropout)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fathom.errors import ConfigError, closest
from fathom.nn.classifier import ClassifierModel
from fathom.options import Probability, Size

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def make_activation(name: str, where: str = "model.activation") -> nn.Module:
    """A new activation layer by name; an unknown name is a ConfigError naming ``where``."""
    if name not in ACTIVATIONS:
        hint = closest(name, ACTIVATIONS) or f" (choose from {', '.join(ACTIVATIONS)})"
        raise ConfigError(f"{where}: unknown activation '{name}'{hint}")
    return ACTIVATIONS[name]()


def check_dropout(dropout: float, where: str = "model.dropout") -> None:
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"{where} must be in [0, 1), got {dropout}")


class MLP(ClassifierModel):
    """``features``: flatten and the hidden blocks; ``head``: the output linear layer."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        check_dropout(dropout)
        if in_features < 1 or num_classes < 1 or any(size < 1 for size in hidden):
            raise ConfigError(
                f"mlp sizes must be positive: in_features={in_features}, "
                f"num_classes={num_classes}, hidden={list(hidden)}"
            )
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            block: list[nn.Module] = [nn.Linear(width, size, bias=not batch_norm)]
            if batch_norm:
                block.append(nn.BatchNorm1d(size))
            block.append(make_activation(activation))
            if dropout > 0:
                block.append(nn.Dropout(dropout))
            layers.append(nn.Sequential(*block))
            width = size
        super().__init__(nn.Sequential(*layers), nn.Linear(width, num_classes))


def mlp(
    in_features: Size,
    num_classes: Size,
    hidden: Size | Sequence[Size] = (256, 256),
    activation: str = "relu",
    dropout: Probability = 0.0,
    batch_norm: bool = False,
) -> MLP:
    """A multilayer perceptron; ``hidden`` lists the hidden widths (``[]``: logistic regression)."""
    sizes = [hidden] if isinstance(hidden, int) else [int(size) for size in hidden]
    return MLP(in_features, num_classes, sizes, activation, dropout, batch_norm)
