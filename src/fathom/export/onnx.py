"""ONNX export of a run's model, fp32 or dynamic int8, checked against PyTorch before it is kept.

Two exporters are offered, both tested: ``torchscript`` (``torch.onnx.export(dynamo=False)``, the
default: it exports every exportable Fathom model, text Transformers included, in about a second)
and ``dynamo`` (``torch.export``-based; slower, and it refuses the Transformer text classifier's
data-dependent padding mask here). int8 is ONNX Runtime's ``quantize_dynamic`` (weights int8,
activations quantized on the fly), which ran on graphs from both exporters with onnxruntime 1.32.
The run's name, task and data facts (shape, classes, normalisation, tokenizer) are stored in the
file's metadata, so ``fathom serve MODEL.onnx`` needs nothing else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fathom.errors import ConfigError, FathomError
from fathom.export.checks import (
    check_exportable,
    check_parity,
    compare_outputs,
    test_inputs,
    torch_outputs,
)
from fathom.runs.run import Run

EXPORTERS = ("torchscript", "dynamo")
QUANTIZATIONS = ("int8",)
DEFAULT_OPSET = {"torchscript": 17, "dynamo": 18}
INPUT_NAME, OUTPUT_NAME = "input", "output"


def export_onnx(
    run: Run,
    path: str | Path,
    *,
    opset: int | None = None,
    dynamic_batch: bool = False,
    exporter: str = "torchscript",
    quantize: str | None = None,
    inputs: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Write ``run``'s model to ``path`` as ONNX (``quantize="int8"``: dynamic int8) and return
    the parity record: argmax agreement and max abs difference against PyTorch over ``inputs``
    (default: the run's test split). An fp32 file that disagrees is refused and not written."""
    check_exportable(run, "onnx")
    if exporter not in EXPORTERS:
        raise ConfigError(
            f"unknown ONNX exporter '{exporter}' (choose from {', '.join(EXPORTERS)})"
        )
    if quantize not in (None, *QUANTIZATIONS):
        raise ConfigError(f"unknown quantization '{quantize}' (choose from int8)")
    path = Path(path)
    source = "given"
    if inputs is None:
        inputs, source = test_inputs(run)
    if isinstance(getattr(run.model, "onnx_bytes", None), torch.Tensor):
        return write_stored_graph(run, path, inputs, source)
    opset = opset or DEFAULT_OPSET[exporter]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as scratch:
        written = Path(scratch) / "model.onnx"
        trace_to_onnx(run.model, inputs[:2] if dynamic_batch else inputs[:1], written,
                      opset=opset, dynamic_batch=dynamic_batch, exporter=exporter)  # fmt: skip
        if quantize == "int8":
            written = quantize_int8(written, Path(scratch) / "model-int8.onnx")
        store_metadata(written, run, exporter=exporter, quantize=quantize)
        parity = compare_outputs(
            torch_outputs(run.model, inputs), onnx_outputs(written, inputs), run.task.is_classifier
        )
        parity["inputs"] = source
        if quantize is None:
            check_parity(parity, str(path))
        os.replace(written, path)
    return {
        "format": "onnx",
        "exporter": exporter,
        "opset": opset,
        "dynamic_batch": dynamic_batch,
        "quantize": quantize,
        "parity": parity,
    }


def write_stored_graph(run: Run, path: Path, inputs: torch.Tensor, source: str) -> dict[str, Any]:
    """A run quantized by ``fathom compress`` already holds its int8 ONNX graph (dynamic batch):
    write those bytes with the run's metadata; parity is of the file against the run's model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as scratch:
        written = Path(scratch) / "model.onnx"
        written.write_bytes(run.model.onnx_bytes.numpy().tobytes())
        store_metadata(written, run, exporter="fathom compress", quantize="int8")
        parity = compare_outputs(
            torch_outputs(run.model, inputs), onnx_outputs(written, inputs), run.task.is_classifier
        )
        parity["inputs"] = source
        os.replace(written, path)
    return {"format": "onnx", "exporter": "fathom compress", "opset": None,
            "dynamic_batch": True, "quantize": "int8", "parity": parity}  # fmt: skip


def trace_to_onnx(
    model: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    *,
    opset: int,
    dynamic_batch: bool,
    exporter: str,
) -> None:
    """``torch.onnx.export`` with one input and one output; a failure is one FathomError line."""
    model.eval()
    options: dict[str, Any] = {}
    axes = {0: "batch"} if dynamic_batch else {}
    if not example.is_floating_point():
        axes[1] = "tokens"  # texts are padded to the longest of a batch, up to max_length
    if exporter == "dynamo":
        options.update(external_data=False, verbose=False)
        if axes:
            dims = {index: torch.export.Dim(name, min=1, max=65536) for index, name in axes.items()}
            options["dynamic_shapes"] = (dims,)
    elif axes:
        options["dynamic_axes"] = {
            INPUT_NAME: axes,
            OUTPUT_NAME: {0: "batch"} if dynamic_batch else {},
        }
    try:
        with warnings.catch_warnings(), quiet_logging():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(
                model, (example,), str(path), dynamo=exporter == "dynamo", opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], **options,
            )  # fmt: skip
    except Exception as error:  # torch.onnx raises many kinds; the user gets one line
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()  # no terminal colours
        first = text.splitlines()[0] if text else type(error).__name__
        raise FathomError(
            f"ONNX export ({exporter} exporter, opset {opset}) failed: {first[:300]}"
            + ("; try --exporter torchscript" if exporter == "dynamo" else "")
        ) from None


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """Silence library log lines below ERROR (exporter progress, notes on torchvision)."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def quantize_int8(source: Path, target: Path) -> Path:
    """ONNX Runtime dynamic quantization: int8 weights, activations quantized per batch."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with quiet_logging():  # its advice to pre-process is for static quantization
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    except Exception as error:  # the quantizer raises many kinds; the user gets one line
        raise FathomError(f"int8 quantization of the ONNX graph failed: {error}") from None
    return target


def store_metadata(path: Path, run: Run, **facts: Any) -> None:
    """The run's name, task and data facts as the ONNX file's metadata (``fathom.*`` keys)."""
    import onnx

    from fathom.files import sha256_file

    model = onnx.load(str(path))
    weights = run.path / "model.safetensors" if run.path else None
    properties = {
        "fathom.run": run.path.name if run.path else "",
        "fathom.task": run.task.name,
        "fathom.classifier": str(run.task.is_classifier).lower(),
        "fathom.model": run.config.model.name,
        "fathom.info": json.dumps(run.info.to_dict()),
        "fathom.weights_sha256": sha256_file(weights) if weights and weights.exists() else "",
        **{f"fathom.{key}": str(value) for key, value in facts.items()},
    }
    onnx.helper.set_model_props(model, properties)
    onnx.save(model, str(path))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``fathom.*`` metadata of an ONNX file written by ``export_onnx`` (keys without prefix)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and OSError: one line
        raise FathomError(f"{path}: not a readable ONNX model ({type(error).__name__})") from None
    return {
        prop.key.removeprefix("fathom."): prop.value
        for prop in model.metadata_props
        if prop.key.startswith("fathom.")
    }


def onnx_session(path: str | Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session (``threads``: intra-op threads, default ONNX Runtime's)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime's own exception types: one line
        raise FathomError(f"{path}: ONNX Runtime cannot load it ({error})") from None


def run_session(session: Any, inputs: np.ndarray) -> np.ndarray:
    """Outputs for a batch; a file exported with a fixed batch size is run in chunks of it."""
    declared = session.get_inputs()[0]
    fixed = declared.shape[0] if isinstance(declared.shape[0], int) else None
    expected = np.int64 if "int64" in declared.type else np.float32
    inputs = np.ascontiguousarray(inputs, dtype=expected)
    if fixed is None or fixed == len(inputs):
        return session.run(None, {declared.name: inputs})[0]
    parts = [
        session.run(None, {declared.name: inputs[start : start + fixed]})[0]
        for start in range(0, len(inputs), fixed)
    ]
    return np.concatenate(parts)


def onnx_outputs(path: Path, inputs: torch.Tensor) -> np.ndarray:
    return run_session(onnx_session(path), inputs.numpy())
