"""What a model costs: parameters, multiply-accumulates (PyTorch's FlopCounterMode) and measured
CPU latency for one input."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def _example(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.zeros(1, *input_shape, device=device)


@torch.no_grad()
def multiply_accumulates(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass on one input (half the counted FLOPs)."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(_example(model, input_shape))
    model.train(was_training)
    return counter.get_total_flops() // 2


@torch.no_grad()
def latency_ms(
    model: nn.Module, input_shape: Sequence[int], repeats: int = 30, threads: int = 1
) -> float:
    """Median wall time of one forward pass on one input, in milliseconds, on ``threads`` CPU
    threads (one by default: a stable figure on a shared machine). The median resists the
    spikes other processes cause."""
    was_training = model.training
    model.eval()
    example = _example(model, input_shape)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(3):
            model(example)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            model(example)
            times.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)
        model.train(was_training)
    return statistics.median(times) * 1000.0
