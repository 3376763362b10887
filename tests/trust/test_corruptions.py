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
