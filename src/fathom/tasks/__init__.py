"""Tasks: the maths of each kind of learning (``fathom.tasks.create("classification", ...)``)."""

from __future__ import annotations

from typing import Any

from fathom.registry import TASKS
from fathom.tasks.base import Task

__all__ = ["Task", "create", "list"]

TASKS.register(
    "classification",
    "fathom.tasks.classification:Classification",
    description="cross-entropy; accuracy, top-k, per-class F1",
)
TASKS.register(
    "regression",
    "fathom.tasks.regression:Regression",
    description="mean squared error; MAE, RMSE, R²",
)


def create(name: str, **kwargs: Any) -> Task:
    """Build the registered task ``name``."""
    return TASKS.create(name, **kwargs)


def list() -> list[str]:  # noqa: A001
    return TASKS.names()
