"""Pruning: requested sparsity, channels removed from the tensors, replay through the lineage."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fathom import models
from fathom.compression.pruning import (
    multiply_accumulates,
    parameter_count,
    plan_channel_pruning,
    prunable_layers,
    sparsity,
)
from fathom.errors import ConfigError
from fathom.runs import apply_transform, lineage_of, replay


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return models.create("cnn", in_channels=1, num_classes=10, image_size=8, channels=[8, 16])


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_magnitude_pruning_reaches_the_requested_sparsity(scope) -> None:
    model = apply_transform(small_cnn(), "prune_magnitude", amount=0.6, scope=scope)
    assert sparsity(model) == pytest.approx(0.6, abs=0.01)
    if scope == "layer":
        for _, layer in prunable_layers(model):
            zeros = float((layer.weight == 0).float().mean())
            assert zeros == pytest.approx(0.6, abs=0.02)
    assert not any(name.endswith("_orig") for name in model.state_dict())  # made permanent
    assert lineage_of(model)["transforms"] == [
        {"name": "prune_magnitude", "params": {"amount": 0.6, "scope": scope}}
    ]


def test_structured_pruning_shrinks_tensors_and_replays_to_the_same_shapes() -> None:
    torch.manual_seed(0)
    model = models.create("resnet8", in_channels=3, num_classes=10)  # residual blocks
    model.requires_grad_(False)  # as an EMA run's model comes back
    before = {name: tuple(p.shape) for name, p in model.named_parameters()}
    macs_before, parameters_before = (
        multiply_accumulates(model, [3, 16, 16]),
        parameter_count(model),
    )
    steps = plan_channel_pruning(model, 0.5, [3, 16, 16])
    pruned = apply_transform(models.create("resnet8", in_channels=3, num_classes=10),
                             "prune_channels", input_shape=[3, 16, 16], steps=steps)  # fmt: skip
    pruned.load_state_dict(model.state_dict())
    after = {name: tuple(p.shape) for name, p in pruned.named_parameters()}
    convs = [name for name in before if name.endswith("weight") and len(before[name]) == 4]
    assert all(after[name][0] <= before[name][0] for name in convs)
    assert sum(after[name][0] < before[name][0] for name in convs) >= len(convs) // 2
    assert after["head.weight"][0] == 10  # the classes are never pruned
    assert parameter_count(pruned) < parameters_before / 2
    assert multiply_accumulates(pruned, [3, 16, 16]) < macs_before / 2
    rebuilt = replay(lineage_of(pruned))  # a fresh base, then the recorded steps
    rebuilt.load_state_dict(pruned.state_dict())
    inputs = torch.randn(4, 3, 16, 16)
    pruned.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt(inputs), pruned(inputs))


def test_bad_pruning_amounts_are_refused() -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        apply_transform(small_cnn(), "prune_magnitude", amount=1.5)
    with pytest.raises(ConfigError, match="scope"):
        apply_transform(small_cnn(), "prune_magnitude", amount=0.5, scope="row")
