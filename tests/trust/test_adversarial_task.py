"""The adversarial task trains, and a run interrupted mid-way resumes to the same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import fathom
from fathom.engine.callbacks import Callback
from fathom.errors import ConfigError
from fathom.tasks.adversarial import AdversarialClassification
from tests_support import InterruptAt

SETTINGS = ["model.name=cnn", "model.channels=[4]", "model.hidden=0", "data.limit=200",
            "train.epochs=2", "train.checkpoint_every_steps=4", "run.progress=none",
            "train.diagnostics=false", "task.name=adversarial", "task.eps=0.1",
            "run.report=false"]  # fmt: skip


def assert_cut_run_resumes_to(whole: fathom.Run, tmp_path: Path, overrides: list[str]) -> None:
    """The same run stopped after step 6 and resumed ends with ``whole``'s weights exactly."""
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


@pytest.mark.parametrize("method", ["pgd"])  # fast FGSM draws its start the same way
def test_adversarial_training_resumes_exactly(tmp_path: Path, method: str) -> None:
    overrides = [*SETTINGS, f"task.method={method}", "task.steps=2", f"run.dir={tmp_path}"]
    whole = fathom.fit(None, "digits", overrides=[*overrides, "run.name=whole"])
    assert_cut_run_resumes_to(whole, tmp_path, overrides)


def test_unknown_adversarial_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no option 'epsilon'"):
        fathom.fit(None, "digits", overrides=[*SETTINGS, "task.epsilon=0.1", f"run.dir={tmp_path}"])


def test_eps_warmup_ramps_the_attack_from_clean_and_resumes_exactly(tmp_path: Path) -> None:
    """task.eps_warmup_epochs: ε (and the step) grow linearly from 0 with the update count; at 0
    the attacked batch is the clean batch. The clock comes from the checkpoint on resume."""
    overrides = [*SETTINGS, "task.method=pgd", "task.steps=2", "task.eps_warmup_epochs=1.5",
                 f"run.dir={tmp_path}"]  # fmt: skip
    seen: list[float] = []

    class Watch(Callback):
        def batch_end(self, trainer) -> None:
            seen.append(trainer.task.ramp)

    whole = fathom.fit(
        None, "digits", overrides=[*overrides, "run.name=whole"], callbacks=[Watch()]
    )
    per_epoch = len(seen) // 2
    assert seen[0] == 0.0 and seen[per_epoch] == pytest.approx(1 / 1.5)
    assert seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:], strict=False))
    assert_cut_run_resumes_to(whole, tmp_path, overrides)


def test_a_ramp_at_zero_trains_on_the_clean_batch() -> None:
    task = AdversarialClassification(10, method="pgd", eps=0.3, steps=3, eps_warmup_epochs=1.0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 10))
    batch = (torch.rand(8, 1, 4, 4), torch.randint(0, 10, (8,)))
    task.ramp = 0.0
    loss, _ = task.training_loss("train", model, batch)
    assert torch.allclose(loss, F.cross_entropy(model(batch[0]), batch[1]))
    task.ramp = 1.0
    assert task.training_loss("train", model, batch)[0] > loss  # the attack raises the loss
    with pytest.raises(ConfigError, match="task.eps_warmup_epochs must be in"):
        AdversarialClassification(10, eps_warmup_epochs=-1.0)
