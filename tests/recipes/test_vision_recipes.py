"""Every dataset's recipe trains end to end on a small slice of its dataset (one short epoch).

The networks keep their recipe's structure but shrink where a full-width CPU epoch would take
minutes (``SHRINK``); the figures each recipe documents come from full runs, not from here.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import fathom
from fathom import recipes

pytestmark = pytest.mark.slow

# bf16 pays off only for wide layers on a CPU; the shrunken networks run in fp32.
SHRINK = {
    "cifar10": {"model": {"widths": [16, 32, 32]}, "train": {"precision": "fp32"}},
    "cifar10-speed": {
        "model": {"widths": [16, 32, 32]},
        "train": {"precision": "fp32", "compile": False},
    },
    "folder": {"model": {"width": 0.125}, "train": {"precision": "fp32"}},
    "mnist-speed": {"train": {"precision": "fp32", "compile": False}},
}


def smoke_config(recipe: str, data_dir: Path, run_dir: Path, **data: object) -> dict:
    config = {
        "recipe": recipe,
        "data": {
            "data_dir": str(data_dir),
            "download": False,
            "limit": 512,
            "eval_limit": 1000,
            **data,
        },
        "train": {"epochs": 1, "threads": 2},
        "run": {"dir": str(run_dir), "progress": "none", "report": False},
    }
    for section, values in SHRINK.get(recipe, {}).items():
        config[section] = {**config.get(section, {}), **values}
    return config


def check_run(run: fathom.Run, recipe: str) -> None:
    summary = run.summary
    assert summary["status"] == "completed" and run.config.recipe == recipe
    accuracy = summary["test"]["accuracy"]
    assert 0.0 <= accuracy <= 1.0 and math.isfinite(summary["test"]["loss"])


@pytest.mark.parametrize("recipe", ["digits", "mnist", "mnist-speed", "cifar10", "cifar10-speed"])
def test_dataset_recipe_trains_on_a_slice(recipe, shared_datasets, tmp_path):
    run = fathom.fit(config=smoke_config(recipe, shared_datasets, tmp_path))
    check_run(run, recipe)


def test_image_folder_uses_the_folder_recipe(shared_datasets, tmp_path):
    folder = shared_datasets / "mnist_tiny"
    if not (folder / "train").is_dir():
        pytest.skip(f"{folder} is not available")
    assert recipes.recipe_for_dataset("folder") == "folder"
    config = smoke_config("folder", shared_datasets, tmp_path, name="folder", path=str(folder))
    del config["recipe"]
    config["model"]["name"] = (
        "resnet18"  # found from the dataset name, as `fathom train path/to/images/` does
    )
    with pytest.warns(UserWarning, match="no class subfolders"):
        run = fathom.fit(config=config)
    assert run.config.recipe == "folder" and run.config.model.width == 0.125
    assert run.task.tta == ("flip",)
    assert run.summary["test"]["accuracy"] > 0.5  # 3 versus 7: above chance after one epoch


def test_every_recipe_documents_version_and_measured_figures():
    for name in recipes.list():
        raw = fathom.registry.RECIPES.get(name)()
        assert isinstance(raw.get("version"), int), name
        if name in ("cifar10", "cifar10-speed", "folder", "mnist", "mnist-fast", "mnist-speed"):
            assert raw.get("expected"), f"recipe {name} documents no expected figures"
