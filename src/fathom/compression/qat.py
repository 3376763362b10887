"""Quantization-aware training: a short fine-tune with int8 rounding simulated in the forward
pass, before the model is quantized by ONNX Runtime like any other (``fathom compress
--quantize int8 --qat-epochs N``).

The simulation follows what ONNX Runtime then does, so the weights learn the grid they will
be stored on: each Conv/Linear weight is fake-quantized to symmetric int8 in [-127, 127]
(per output channel for static quantization, per tensor for dynamic), and each Conv/Linear
input to asymmetric uint8 (ranges from a moving average of batch min/max for static, the
batch's own for dynamic, as ``quantize_dynamic`` computes them per call). Gradients pass
through the rounding (the straight-through estimator of ``torch.fake_quantize_*``). Recurrent
layers are quantized by ONNX Runtime but not simulated here. PyTorch's own QAT
(``torch.ao.quantization``) is deprecated in torch 2.13 and converts to its own kernels, not
ONNX Runtime's, hence these few lines.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

QUANTIZED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)
RANGE_MOMENTUM = 0.01  # of the running min/max (PyTorch's MovingAverageMinMaxObserver default)


class WeightFakeQuant(nn.Module):
    """A parametrization: the weight rounded to symmetric int8 (scale = max |w| / 127)."""

    def __init__(self, per_channel: bool) -> None:
        super().__init__()
        self.per_channel = per_channel

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.per_channel:
            reduced = weight.detach().abs().flatten(1).amax(dim=1).float()
            scale = (reduced / 127).clamp(min=1e-12)
            zero = torch.zeros(len(scale), dtype=torch.int32, device=weight.device)
            return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -127, 127)
        scale = max(float(weight.detach().abs().max()) / 127, 1e-12)
        return torch.fake_quantize_per_tensor_affine(weight, scale, 0, -127, 127)


class InputFakeQuant:
    """A forward pre-hook: the layer's input rounded to uint8 over its range (which includes 0)."""

    def __init__(self, dynamic: bool) -> None:
        self.dynamic = dynamic
        self.low: float | None = None
        self.high: float | None = None

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        inputs = args[0] if args else None
        if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
            return None
        low, high = float(inputs.detach().min()), float(inputs.detach().max())
        if not self.dynamic:
            if self.low is None or self.high is None:
                self.low, self.high = low, high
            elif module.training:
                self.low += RANGE_MOMENTUM * (low - self.low)
                self.high += RANGE_MOMENTUM * (high - self.high)
            low, high = self.low, self.high
        low, high = min(low, 0.0), max(high, 0.0)
        scale = max((high - low) / 255, 1e-12)
        zero = int(min(255, max(0, round(-low / scale))))
        rounded = torch.fake_quantize_per_tensor_affine(inputs.float(), scale, zero, 0, 255)
        return (rounded.to(inputs.dtype), *args[1:])


def simulate_int8(model: nn.Module, mode: str) -> list[Any]:
    """Fake-quantize ``model``'s Conv/Linear weights and inputs in place; returns the hooks."""
    hooks = []
    for layer in model.modules():
        if isinstance(layer, QUANTIZED_LAYERS):
            parametrize.register_parametrization(layer, "weight", WeightFakeQuant(mode == "static"))
            hooks.append(layer.register_forward_pre_hook(InputFakeQuant(mode == "dynamic")))
    return hooks


def stop_simulating(model: nn.Module, hooks: list[Any]) -> None:
    """Remove the fake quantization; the trained float weights stay."""
    for hook in hooks:
        hook.remove()
    for layer in model.modules():
        if parametrize.is_parametrized(layer, "weight"):
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)


def quantization_aware_finetune(
    model: nn.Module, mode: str, train: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """A copy of ``model`` fine-tuned by ``train(model)`` with int8 simulated for ``mode``."""
    working = copy.deepcopy(model)
    hooks = simulate_int8(working, mode)
    try:
        train(working)
    finally:
        stop_simulating(working, hooks)
    return working.eval(), {"qat_layers": len(hooks), "qat_mode": mode}
