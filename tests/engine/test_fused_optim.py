"""optim.fused builds PyTorch's fused optimizers, which step exactly like the plain ones."""

from __future__ import annotations

import pytest
import torch

from fathom.config import OptimConfig
from fathom.engine.optim import build_optimizer
from fathom.errors import ConfigError


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_fused_optimizer_matches_the_plain_one(name: str) -> None:
    results = []
    for fused in (False, True):
        torch.manual_seed(0)
        weight = torch.nn.Parameter(torch.randn(4, 3))
        config = OptimConfig(name=name, lr=0.1, nesterov=True, weight_decay=0.01, fused=fused)
        optimizer = build_optimizer([weight], config)
        assert bool(optimizer.defaults.get("fused")) is fused
        for _ in range(3):
            weight.grad = weight.detach().sin()
            optimizer.step()
        results.append(weight.detach().clone())
    torch.testing.assert_close(results[0], results[1])


def test_fused_rmsprop_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="optim.fused is not available for rmsprop"):
        build_optimizer(
            [torch.nn.Parameter(torch.ones(2))], OptimConfig(name="rmsprop", fused=True)
        )
