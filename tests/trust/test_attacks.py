"""FGSM and PGD: closed form on a linear model, the ε-ball, the loss, and torchattacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fathom.errors import ConfigError
from fathom.tasks.attacks import AttackSpec, PixelSpace, attack

NO_NORMALIZATION = PixelSpace(None, 4)


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def images(count: int = 32, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    torch.manual_seed(1)
    return low + (high - low) * torch.rand(count, 1, 4, 4)


def test_fgsm_matches_its_closed_form_on_a_linear_model() -> None:
    model = linear_model()
    pixels, labels = images(low=0.3, high=0.7), torch.randint(0, 2, (32,))
    adversarial = attack(model, pixels, labels, AttackSpec("fgsm", 0.1), NO_NORMALIZATION)
    weight = model[1].weight.detach()
    # d CE / dx = (p1 - y1) (w1 - w0): its sign is +sign(w1 - w0) for label 0, - for label 1
    direction = torch.sign(weight[1] - weight[0]).view(1, 1, 4, 4)
    expected = pixels + 0.1 * direction * (1 - 2 * labels.float()).view(-1, 1, 1, 1)
    assert torch.allclose(adversarial, expected, atol=1e-6)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_stays_in_the_ball_and_the_pixel_range_and_raises_the_loss(norm: str) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3))
    pixels, labels = images(), torch.randint(0, 3, (32,))
    eps = 0.2 if norm == "linf" else 0.8
    spec = AttackSpec("pgd", eps, norm, steps=10, restarts=2)
    adversarial = attack(model, pixels, labels, spec, NO_NORMALIZATION)
    delta = (adversarial - pixels).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-5
    assert float(adversarial.min()) >= 0 and float(adversarial.max()) <= 1
    with torch.no_grad():
        before = F.cross_entropy(model(pixels), labels)
        after = F.cross_entropy(model(adversarial), labels)
    assert after > before


def test_targeted_pgd_lowers_the_loss_of_the_target_and_works_through_normalization() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    space = PixelSpace({"mean": [0.5], "std": [0.25]}, 4)
    pixels, labels = images(), torch.zeros(32, dtype=torch.long)
    target = torch.full((32,), 2)
    inputs = space.to_inputs(pixels)
    adversarial = attack(model, inputs, labels, AttackSpec("pgd", 0.1), space, target=target)
    assert float((space.to_pixels(adversarial) - pixels).abs().max()) <= 0.1 + 1e-5
    with torch.no_grad():
        assert F.cross_entropy(model(adversarial), target) < F.cross_entropy(model(inputs), target)


def test_bad_attack_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="eps must be >= 0"):
        AttackSpec("pgd", -0.1)
    with pytest.raises(ConfigError, match="fgsm or pgd"):
        AttackSpec("cw", 0.1)


@pytest.mark.parametrize("method", ["fgsm", "pgd", "pgd-l2"])
def test_attacks_agree_with_torchattacks(method: str) -> None:
    torchattacks = pytest.importorskip("torchattacks")
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    pixels, labels = images(), torch.randint(0, 3, (32,))
    if method == "fgsm":
        ours = AttackSpec("fgsm", 0.1)
        reference = torchattacks.FGSM(model, eps=0.1)
    elif method == "pgd":
        ours = AttackSpec("pgd", 0.1, steps=7, step_size=0.02, random_start=False)
        reference = torchattacks.PGD(model, eps=0.1, alpha=0.02, steps=7, random_start=False)
    else:
        ours = AttackSpec("pgd", 0.5, "l2", steps=7, step_size=0.1, random_start=False)
        reference = torchattacks.PGDL2(model, eps=0.5, alpha=0.1, steps=7, random_start=False)
    expected = reference(pixels, labels)
    assert torch.allclose(
        attack(model, pixels, labels, ours, NO_NORMALIZATION), expected, atol=1e-5
    )


def test_fast_fgsm_training_takes_its_gradient_at_the_unclamped_start() -> None:
    """Wong et al.'s fast FGSM: the gradient at the uniform start as drawn (below 0 on a black
    background), the example still inside the ball and [0, 1]; an attack clamps its start."""
    from fathom.tasks.adversarial import AdversarialClassification

    seen: list[torch.Tensor] = []

    class Recorder(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.detach().clone())
            return x.flatten(1)[:, :3] * 1.0 + 0 * x.sum()

    task = AdversarialClassification(3, method="fgsm", eps=0.3)
    assert task.spec.clamp_start is False and AttackSpec().clamp_start is True
    black = torch.zeros(64, 1, 2, 2)
    labels = torch.zeros(64, dtype=torch.long)
    torch.manual_seed(0)
    adversarial = attack(Recorder(), black, labels, task.spec, PixelSpace(None, 4))
    assert seen[0].min() < -0.1  # the start as drawn, outside the image range
    assert adversarial.min() >= 0 and adversarial.max() <= 0.3 + 1e-6
    seen.clear()
    attack(Recorder(), black, labels, AttackSpec("pgd", 0.3, steps=1), PixelSpace(None, 4))
    assert seen[0].min() >= 0
