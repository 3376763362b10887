"""Corruptions: deterministic for a seed, shapes and ranges kept, severities ordered."""

from __future__ import annotations

import pytest
import torch

from fathom.errors import ConfigError
from fathom.trust.corruptions import CORRUPTIONS, corrupt


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(4, 3, 16, 16, generator=generator)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_is_deterministic_and_keeps_shape_and_range(name: str, pixels) -> None:
    for severity in (1, 5):
        first = corrupt(pixels, name, severity, seed=3)
        assert first.shape == pixels.shape and first.dtype == torch.float32
        assert float(first.min()) >= 0 and float(first.max()) <= 1
        assert torch.equal(first, corrupt(pixels, name, severity, seed=3))
    assert not torch.equal(corrupt(pixels, name, 5, seed=3), pixels)


def test_grey_images_and_stronger_severities_change_more() -> None:
    grey = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    for name in CORRUPTIONS:
        assert corrupt(grey, name, 3).shape == grey.shape
    mild = (corrupt(grey, "gaussian_noise", 1) - grey).abs().mean()
    strong = (corrupt(grey, "gaussian_noise", 5) - grey).abs().mean()
    assert strong > mild


def test_bad_names_and_severities_are_config_errors(pixels) -> None:
    with pytest.raises(ConfigError, match="did you mean 'fog'"):
        corrupt(pixels, "fogg", 1)
    with pytest.raises(ConfigError, match="severity"):
        corrupt(pixels, "fog", 6)


def test_noise_and_brightness_follow_cifar_10_c_severities() -> None:
    """CIFAR-10-C's constants (ImageNet-C's noise is about twice as strong on 32x32 images)."""
    grey = torch.full((8, 3, 32, 32), 0.5)
    for severity, scale in ((1, 0.04), (5, 0.10)):
        noise = corrupt(grey, "gaussian_noise", severity) - grey
        assert float(noise.std()) == pytest.approx(scale, rel=0.05)
    for severity, amount in ((1, 0.01), (5, 0.07)):
        changed = (corrupt(grey, "impulse_noise", severity) != grey).float().mean()
        assert float(changed) == pytest.approx(amount, rel=0.15)
    colour = torch.tensor([0.2, 0.4, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    brighter = corrupt(colour, "brightness", 1)  # value 0.4 -> 0.45, hue and saturation kept
    assert torch.allclose(brighter[0, :, 0, 0], torch.tensor([0.225, 0.45, 0.0]))
    black = torch.zeros(1, 3, 2, 2)
    assert torch.allclose(corrupt(black, "brightness", 5), torch.full_like(black, 0.3))
