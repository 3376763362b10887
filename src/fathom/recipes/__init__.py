"""Named, versioned training recipes: YAML config layers applied before the user's own config.

``fathom train DATASET`` uses the recipe registered under the dataset's name, if any.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from fathom.config import load_yaml
from fathom.registry import RECIPES

__all__ = ["get", "list", "recipe_for_dataset"]

HERE = Path(__file__).parent

for _path in sorted(HERE.glob("*.yaml")):
    RECIPES.register(
        _path.stem,
        partial(load_yaml, _path),
        description=_path.read_text().splitlines()[0].lstrip("# "),
    )


def get(name: str) -> dict[str, Any]:
    """The config layer of recipe ``name`` (an unknown name is a ConfigError with a suggestion)."""
    layer = RECIPES.get(name)()
    layer.pop("version", None)
    layer.pop("expected", None)
    return {**layer, "recipe": name}


def recipe_for_dataset(dataset: str, task: str = "auto") -> str | None:
    """The recipe ``fathom train DATASET`` uses: DATASET-TASK when ``task.name`` is set and such
    a recipe exists (``mnist task.name=simclr`` → mnist-simclr), else DATASET's own, if any."""
    if task != "auto" and f"{dataset}-{task}" in RECIPES:
        return f"{dataset}-{task}"
    return dataset if dataset in RECIPES else None


def list() -> list[str]:  # noqa: A001
    return RECIPES.names()
