"""The generative recipes resolve, and their model and task build for MNIST-shaped data."""

from __future__ import annotations

import pytest

from fathom.assemble import build_model, make_task, resolve_config
from fathom.data.bundle import DataInfo

MNIST = DataInfo("mnist", "classification", (1, 28, 28), num_classes=10)


@pytest.mark.parametrize(
    "recipe, task_name",
    [("mnist-gan", "gan"), ("mnist-vae", "vae"), ("mnist-diffusion", "diffusion")],
)
def test_generative_recipe_builds(recipe: str, task_name: str) -> None:
    config = resolve_config({"recipe": recipe})
    assert config.data.name == "mnist" and config.task.name == task_name
    model = build_model(config, MNIST)
    task = make_task(config, MNIST)
    assert task.name == task_name
    assert getattr(model, "image_shape", None) == (1, 28, 28)
    groups = task.optimizer_groups(model)
    assert sum(len(list(group)) for group in groups.values()) == len(list(model.parameters()))
