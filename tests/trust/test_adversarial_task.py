"""The adversarial task trains, and a run interrupted mid-way resumes to the same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import fathom
from fathom.errors import ConfigError
from tests_support import InterruptAt

SETTINGS = ["model.name=cnn", "model.channels=[4]", "model.hidden=0", "data.limit=200",
            "train.epochs=2", "train.checkpoint_every_steps=4", "run.progress=none",
            "train.diagnostics=false", "task.name=adversarial", "task.eps=0.1"]  # fmt: skip


@pytest.mark.parametrize("method", ["pgd"])  # fast FGSM draws its start the same way
def test_adversarial_training_resumes_exactly(tmp_path: Path, method: str) -> None:
    overrides = [*SETTINGS, f"task.method={method}", "task.steps=2", f"run.dir={tmp_path}"]
    whole = fathom.fit(None, "digits", overrides=[*overrides, "run.name=whole"])
    with pytest.raises(KeyboardInterrupt):
        fathom.fit(
            None, "digits", overrides=[*overrides, "run.name=cut"], callbacks=[InterruptAt(6)]
        )
    resumed = fathom.resume(tmp_path / "cut")
    first, second = (
        load_file(whole.path / "model.safetensors"),
        load_file(resumed.path / "model.safetensors"),
    )
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_unknown_adversarial_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no option 'epsilon'"):
        fathom.fit(None, "digits", overrides=[*SETTINGS, "task.epsilon=0.1", f"run.dir={tmp_path}"])
