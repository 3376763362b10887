"""Initialisation schemes: the right distributions, biases zeroed, norm layers left alone."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.models import create, initialize
from fathom.registry import INITIALIZATIONS


def linear(seed: int = 0, fan_in: int = 400, fan_out: int = 300) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(fan_in, fan_out)


def test_xavier_uniform_bound_and_spread() -> None:
    weight = initialize(linear(), "xavier_uniform").weight
    bound = math.sqrt(6 / (400 + 300))
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.99 * bound
    assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)


def test_xavier_normal_std() -> None:
    weight = initialize(linear(), "xavier_normal").weight
    assert weight.std().item() == pytest.approx(math.sqrt(2 / 700), rel=0.03)
    assert weight.mean().abs().item() < 0.01


def test_kaiming_schemes_use_fan_in_and_relu_gain() -> None:
    torch.manual_seed(0)
    convolution = initialize(nn.Conv2d(16, 64, 5), "kaiming_normal")
    fan_in = 16 * 5 * 5
    assert convolution.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)
    weight = initialize(linear(), "kaiming_uniform").weight
    bound = math.sqrt(6 / 400)
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.99 * bound


def test_orthogonal_rows_are_orthonormal() -> None:
    weight = initialize(linear(fan_in=300, fan_out=100), "orthogonal").weight
    torch.testing.assert_close(weight @ weight.T, torch.eye(100), atol=1e-4, rtol=0)
    convolution = initialize(nn.Conv2d(32, 16, 3), "orthogonal").weight.flatten(1)
    torch.testing.assert_close(convolution @ convolution.T, torch.eye(16), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("alias", "scheme"),
    [
        ("glorot_uniform", "xavier_uniform"),
        ("glorot_normal", "xavier_normal"),
        ("he_uniform", "kaiming_uniform"),
        ("he_normal", "kaiming_normal"),
    ],
)
def test_aliases_match(alias: str, scheme: str) -> None:
    torch.manual_seed(1)
    first = initialize(linear(), alias).weight.clone()
    torch.manual_seed(1)
    second = initialize(linear(), scheme).weight
    torch.testing.assert_close(first, second)


@pytest.mark.parametrize("scheme", sorted(set(INITIALIZATIONS.names()) - {"default"}))
def test_every_scheme_changes_weights_zeroes_biases_and_spares_norms(scheme: str) -> None:
    model = nn.Sequential(
        nn.Conv1d(3, 4, 3),
        nn.ConvTranspose2d(4, 4, 3),
        nn.Conv3d(2, 3, 3),
        nn.Linear(8, 8),
        nn.BatchNorm2d(4),
        nn.LayerNorm(8),
    )
    with torch.no_grad():
        model[4].weight.fill_(0.5)
    before = [layer.weight.clone() for layer in model[:4]]
    assert initialize(model, scheme) is model
    for layer, old in zip(model[:4], before, strict=True):
        assert not torch.equal(layer.weight, old)
        assert torch.count_nonzero(layer.bias) == 0
    assert torch.all(model[4].weight == 0.5) and torch.all(model[4].bias == 0)
    assert torch.all(model[5].weight == 1) and torch.all(model[5].bias == 0)


def test_default_leaves_the_model_alone() -> None:
    model = linear()
    weight, bias = model.weight.clone(), model.bias.clone()
    initialize(model, "default")
    assert torch.equal(model.weight, weight) and torch.equal(model.bias, bias)


def test_zero_initialised_residual_survives_a_scheme() -> None:
    model = create("resnet8", init="he_normal", zero_init_residual=True)
    assert all(torch.all(block.bn2.weight == 0) for block in model.features[1])


def test_unknown_scheme_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="model.init.*did you mean 'xavier_uniform'"):
        initialize(linear(), "xavier_uniforn")
    with pytest.raises(ConfigError, match="choose from"):
        create("mlp", init="zzz", in_features=4, num_classes=2)
