"""What can be exported, the inputs export is checked on, and how two outputs are compared."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fathom.data.bundle import DataInfo, Split
from fathom.errors import ConfigError, FathomError
from fathom.runs.run import Run

FORMATS = ("onnx", "torchscript", "safetensors")


def reads_tokens(info: DataInfo) -> bool:
    """Whether the model's inputs are token ids (text classifiers) rather than float values."""
    return "vocab_size" in info.extra or "tokenizer" in info.extra


def check_exportable(run: Run, export_format: str) -> None:
    """Refuse, in one line, a run whose model cannot be exported to ``export_format``."""
    task = run.task
    if not task.graph_predictions:
        raise ConfigError(
            f"export works on classification and regression runs; this is a {task.name} run "
            "(generative, language-model, seq2seq and forecast models sample or decode in loops "
            "that a single graph does not hold; their weights are in the run's model.safetensors)"
        )
    if export_format == "safetensors":
        return
    recurrent = any(isinstance(module, nn.RNNBase) for module in run.model.modules())
    if recurrent and reads_tokens(run.info):
        raise ConfigError(
            f"{export_format} export of a recurrent text model ({run.config.model.name}) is "
            "refused: its packed sequences do not trace (torch.onnx fails; a trace would freeze "
            "the lengths); use --format safetensors"
        )


def example_inputs(info: DataInfo, count: int, seed: int = 0) -> torch.Tensor:
    """Synthetic inputs of the run's shape: token ids for text models, else standard normals."""
    generator = torch.Generator().manual_seed(seed)
    shape = (count, *info.input_shape)
    if reads_tokens(info):
        vocabulary = int(info.extra.get("vocab_size", 2))
        return torch.randint(1, max(vocabulary, 2), shape, generator=generator)
    return torch.randn(shape, generator=generator)


def test_inputs(run: Run, count: int = 256) -> tuple[torch.Tensor, str]:
    """Up to ``count`` normalised inputs of the run's test split (else validation split), and
    where they came from; synthetic inputs when the dataset cannot be loaded here."""
    from fathom.assemble import load_data

    try:
        if run.data is None:
            run.data = load_data(run.config)
        split = run.data.test if run.data.test is not None else run.data.val
    except FathomError as error:
        return example_inputs(run.info, count), f"synthetic (dataset not loaded: {error})"
    if split is None:
        return example_inputs(run.info, count), "synthetic (the dataset has no test split)"
    name = "test" if run.data.test is not None else "val"
    if isinstance(split, Split):
        return split.inputs[:count], f"{name} split, first {min(count, len(split))}"
    chosen = range(min(count, len(split)))
    return torch.stack([split[index][0] for index in chosen]), f"{name} split, first {len(chosen)}"


def compare_outputs(
    reference: np.ndarray, candidate: np.ndarray, classifier: bool
) -> dict[str, Any]:
    """Argmax agreement (classifiers) and the largest absolute difference of two output arrays."""
    reference = reference.reshape(len(reference), -1).astype(np.float64)
    candidate = candidate.reshape(len(candidate), -1).astype(np.float64)
    agreement = None
    if classifier:
        agreement = float((reference.argmax(axis=1) == candidate.argmax(axis=1)).mean())
    return {
        "examples": int(len(reference)),
        "argmax_agreement": agreement,
        "max_abs_difference": float(np.abs(reference - candidate).max()),
        "max_abs_output": float(np.abs(reference).max()),
    }


def check_parity(parity: dict[str, Any], where: str, tolerance: float = 1e-3) -> None:
    """Refuse an fp32 export whose outputs differ from PyTorch's beyond ``tolerance`` (relative)."""
    limit = tolerance * max(1.0, parity["max_abs_output"])
    agreement = parity["argmax_agreement"]
    if parity["max_abs_difference"] > limit or (agreement is not None and agreement < 0.99):
        raise FathomError(
            f"{where}: outputs differ from PyTorch's (max abs difference "
            f"{parity['max_abs_difference']:.3g}, argmax agreement {agreement}); nothing written"
        )


def describe_parity(parity: dict[str, Any]) -> str:
    """One line for the terminal."""
    agreement = parity["argmax_agreement"]
    shown = f"argmax agreement {agreement * 100:.2f}%, " if agreement is not None else ""
    return (
        f"{shown}max abs difference {parity['max_abs_difference']:.3g} "
        f"over {parity['examples']} inputs ({parity['inputs']})"
    )


@torch.no_grad()
def torch_outputs(model: nn.Module, inputs: torch.Tensor, chunk: int = 256) -> np.ndarray:
    """The model's raw outputs (logits for classifiers) in eval mode, as float32 numpy."""
    model.eval()
    return torch.cat([model(part).float() for part in inputs.split(chunk)]).numpy()
