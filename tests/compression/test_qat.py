"""Quantization-aware training: the simulated int8 grid, gradients through it, clean removal
(``fathom compress --qat-epochs`` end to end is in test_compress.py)."""

from __future__ import annotations

import torch
from torch import nn

from fathom.compression.qat import simulate_int8, stop_simulating


def test_weights_and_inputs_are_rounded_to_the_int8_grid_and_gradients_pass() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    plain = [layer.weight.detach().clone() for layer in (model[0], model[2])]
    hooks = simulate_int8(model, "static")
    conv = model[0].weight  # seen through the parametrization
    for channel, original in zip(conv, plain[0], strict=True):  # per output channel
        steps = channel / (original.abs().max() / 127)
        assert torch.allclose(steps, steps.round(), atol=1e-3)
        assert len(channel.unique()) <= 255
    seen = {}
    model[2].register_forward_pre_hook(lambda _, args: seen.update(inputs=args[0]))
    inputs = torch.randn(5, 1, 8, 8, requires_grad=True)
    model(inputs).sum().backward()
    assert len(seen["inputs"].unique()) <= 256  # the Linear's input: uint8 levels
    assert inputs.grad is not None and inputs.grad.abs().sum() > 0  # straight-through
    assert model[0].parametrizations.weight.original.grad is not None
    stop_simulating(model, hooks)
    assert hooks[0].id not in model[0]._forward_pre_hooks
    for layer, original in zip((model[0], model[2]), plain, strict=True):
        assert isinstance(layer.weight, nn.Parameter) and torch.equal(layer.weight, original)


def test_dynamic_mode_rounds_each_weight_tensor_as_a_whole() -> None:
    layer = nn.Linear(6, 4)
    simulate_int8(layer, "dynamic")
    steps = layer.weight / (layer.parametrizations.weight.original.abs().max() / 127)
    assert torch.allclose(steps, steps.round(), atol=1e-3)
