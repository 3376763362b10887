"""Shared layers, blocks and the model contract used by ``fathom.models``."""

from __future__ import annotations

from fathom.nn.classifier import ClassifierModel, parameter_groups

__all__ = ["ClassifierModel", "parameter_groups"]
