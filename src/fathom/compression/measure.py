"""What a compression step is judged by: accuracy, size on disk, parameters, MACs, latency."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fathom.compression.pruning import multiply_accumulates, parameter_count, sparsity
from fathom.data.bundle import DataInfo
from fathom.runs.folder import save_weights
from fathom.runs.run import Run

LATENCY_BATCHES = (1, 64)


def size_on_disk(model: nn.Module) -> int:
    """Bytes of the model.safetensors this model would be saved as."""
    with tempfile.TemporaryDirectory(prefix="fathom-size-") as scratch:
        file = Path(scratch) / "model.safetensors"
        save_weights(file, model, "measure")
        return file.stat().st_size


def describe_model(model: nn.Module, info: DataInfo) -> dict[str, Any]:
    """Parameters, MACs (per example of the run's data), sparsity and size on disk of a model."""
    from fathom.export.checks import example_inputs

    if hasattr(model, "source_parameters"):  # int8 ONNX: counted on the fp32 graph it came from
        parameters, macs, zeros = model.source_parameters, model.source_macs, None
    else:
        parameters, zeros = parameter_count(model), sparsity(model)
        shape = list(info.input_shape or [])
        macs = multiply_accumulates(model, shape, example_inputs(info, 1)) if shape else None
    return {"parameters": parameters, "macs": macs, "sparsity": zeros, "bytes": size_on_disk(model)}


def accuracy(run: Run, model: nn.Module, split: str) -> float:
    """The task's monitored metric (accuracy for classifiers) of ``model`` on a split."""
    candidate = Run(None, run.config, run.info, model, run.data)
    metrics = candidate.evaluate(split)
    return float(metrics.get(run.task.monitor, metrics.get("accuracy", float("nan"))))


def latencies(
    models: dict[str, nn.Module], inputs: torch.Tensor, rounds: int = 20, threads: int = 1
) -> dict[str, dict[str, float]]:
    """Median milliseconds per forward pass at batch 1 and 64, the models interleaved round by
    round (so machine load hits them alike), on ``threads`` threads (PyTorch and ONNX Runtime
    alike; one by default: on a shared 2-core machine two threads gave 100x stragglers)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _interleaved(models, inputs, rounds)
    finally:
        torch.set_num_threads(previous)


@torch.inference_mode()
def _interleaved(
    models: dict[str, nn.Module], inputs: torch.Tensor, rounds: int, batches=LATENCY_BATCHES
) -> dict[str, dict[str, float]]:
    for model in models.values():
        model.eval()
    samples: dict[tuple[str, int], list[float]] = {}
    for size in batches:
        batch = inputs[:size].contiguous()
        for model in models.values():  # warm-up (ONNX Runtime builds its session here)
            model(batch)
        for _ in range(rounds):
            for name, model in models.items():
                started = time.perf_counter()
                model(batch)
                samples.setdefault((name, size), []).append(1000 * (time.perf_counter() - started))
    return {
        name: {f"batch_{size}_ms": statistics.median(samples[(name, size)]) for size in batches}
        for name in models
    }


def test_inputs(run: Run, count: int = 64) -> torch.Tensor:
    """``count`` normalised test inputs (repeated when the split is smaller) for latency."""
    from fathom.export.checks import test_inputs as export_test_inputs

    inputs, _ = export_test_inputs(run, count)
    while len(inputs) < count:
        inputs = torch.cat([inputs, inputs])[:count]
    return inputs
