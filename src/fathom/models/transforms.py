"""Transforms of a built model that the run's lineage records and ``fathom.load`` replays.

Each is ``transform(model, **params) -> model``, deterministic in its shapes: replaying it on a
freshly built base gives a module that the run's saved weights fit. They are registered in
``fathom.runs.lineage`` (``fathom list transforms``).
"""

from __future__ import annotations

from torch import nn

from fathom.errors import ConfigError


def reset_head(model: nn.Module, num_classes: int) -> nn.Module:
    """A new, freshly initialised final linear layer of ``num_classes`` outputs (model contract)."""
    method = getattr(model, "reset_head", None)
    if not callable(method):
        raise ConfigError(
            f"{type(model).__name__} has no reset_head: it does not follow the transfer contract"
        )
    method(num_classes)
    return model
