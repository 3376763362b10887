"""GAN task: the two phases update only their own network; losses; sampling; bad requests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fathom.models
from fathom.config import OptimConfig, TrainConfig
from fathom.data.bundle import DataInfo, Split
from fathom.data.loader import TensorLoader
from fathom.engine import Callback, Trainer
from fathom.errors import ConfigError
from fathom.tasks import create_for_data

INFO = DataInfo(
    "grey", "classification", (1, 28, 28), num_classes=3,
    normalization={"mean": [0.2], "std": [0.3]},
)  # fmt: skip


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    after = module.state_dict()
    return any(
        not torch.equal(before[name], after[name])
        for name in before
        if after[name].is_floating_point() and "running" not in name and "_u" not in name
    )


class PhaseProbe(Callback):
    """At each backward: which networks have gradients, and which weights changed so far."""

    def __init__(self, model, initial) -> None:
        self.model, self.initial, self.seen = model, initial, []

    def after_backward(self, trainer) -> None:
        grads = {
            part: any(p.grad is not None for p in getattr(self.model, part).parameters())
            for part in ("generator", "discriminator")
        }
        moved = {part: changed(self.initial[part], getattr(self.model, part)) for part in grads}
        self.seen.append((grads, moved))


@pytest.mark.parametrize(
    "options, l2",
    [({"loss": "non_saturating"}, 0.0), ({"loss": "hinge"}, 0.0), ({"loss": "wgan_gp"}, 1e-3)],
)
def test_each_phase_updates_only_its_network(options, l2) -> None:
    """With train.l2 the penalty gives every weight a gradient in both phases: the trainer
    clears them between phases, so each optimizer still steps with its own phase's only."""
    torch.manual_seed(0)
    model = fathom.models.create_for_data("gan", INFO, width=8, latent_dim=8, conditional=True)
    task = create_for_data("gan", INFO, **options)
    initial = {part: snapshot(getattr(model, part)) for part in ("generator", "discriminator")}
    probe = PhaseProbe(model, initial)
    split = Split(torch.randn(16, 1, 28, 28), torch.randint(0, 3, (16,)))
    trainer = Trainer(
        model, task, TensorLoader(split, 16), train=TrainConfig(epochs=1, l2=l2),
        optim=OptimConfig(name="adam", lr=1e-2), callbacks=[probe],
    )  # fmt: skip
    assert list(trainer.optimizers) == ["discriminator", "generator"]
    trainer.train_step(next(iter(trainer.train_loader)))
    (d_grads, d_moved), (g_grads, g_moved) = probe.seen
    if not l2:
        assert d_grads == {"generator": False, "discriminator": True}
        assert g_grads == {"generator": True, "discriminator": False}
    assert d_moved == {"generator": False, "discriminator": False}
    assert g_moved == {"generator": False, "discriminator": True}
    assert changed(initial["generator"], model.generator)  # after the generator's step
    assert set(trainer._running) >= {"discriminator_loss", "generator_loss"}


def test_unknown_loss_and_wrong_model_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="did you mean 'hinge'"):
        create_for_data("gan", INFO, loss="hinj")
    task = create_for_data("gan", INFO)
    with pytest.raises(ConfigError, match="model.name=gan"):
        task.check_batch(torch.nn.Linear(2, 2), (torch.zeros(1, 2), torch.zeros(1)))
    # the trainer asks for the optimizer groups first (task.name=gan on a CNN was a traceback)
    with pytest.raises(ConfigError, match="model.name=gan"):
        task.optimizer_groups(torch.nn.Linear(2, 2))


def test_sampling_is_reproducible_and_requests_are_checked(tmp_path) -> None:
    torch.manual_seed(0)
    task = create_for_data("gan", INFO)
    model = fathom.models.create_for_data("gan", INFO, width=8, latent_dim=8, conditional=True)
    state = torch.random.get_rng_state()
    first = task.generate(model, INFO, tmp_path / "a", n=12, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched
    second = task.generate(model, INFO, tmp_path / "b", n=12, seed=3)
    other = task.generate(model, INFO, tmp_path / "c", n=12, seed=4)
    a, b, c = (np.load(result["samples_file"]) for result in (first, second, other))
    assert a.shape == (12, 1, 28, 28) and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.load(first["labels_file"]).tolist() == [0, 1, 2] * 4
    assert (tmp_path / "a" / "samples.png").stat().st_size > 100
    only = task.generate(model, INFO, tmp_path / "d", n=4, label=2)
    assert np.load(only["labels_file"]).tolist() == [2] * 4
    for request, message in [
        ({"label": 3}, "out of range 0..2"),
        ({"label": -1}, "out of range 0..2"),
        ({"n": 0}, "--n must be at least 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            task.generate(model, INFO, tmp_path / "e", **request)
    plain = fathom.models.create_for_data("gan", INFO, width=8, latent_dim=8)
    with pytest.raises(ConfigError, match="not class-conditional"):
        task.generate(plain, INFO, tmp_path / "f", label=1)
