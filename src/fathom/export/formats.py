"""``export_run``: a run's model as ONNX, TorchScript or safetensors, with a JSON record beside it.

The record (``MODEL.<ext>.json``) holds the file's sha256, the run's name and path, the format's
options and, for ONNX and TorchScript, the parity check against PyTorch over test inputs.
TorchScript is ``torch.jit.trace`` (deprecated in torch 2.13 in favour of torch.export, still
the format C++ and older deployments load); safetensors holds the weights with the lineage and
data facts in its metadata, never a pickle.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from fathom.errors import ConfigError, FathomError, closest
from fathom.export.checks import (
    FORMATS,
    check_exportable,
    check_parity,
    compare_outputs,
    test_inputs,
    torch_outputs,
)
from fathom.export.onnx import export_onnx
from fathom.files import atomic_write_json, sha256_file
from fathom.runs.run import Run

SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}


def default_output(run: Run, export_format: str, quantize: str | None = None) -> Path:
    """RUN/export/model[-int8].<ext>."""
    if run.path is None:
        raise FathomError("this run has no folder: pass output= for the exported file")
    stem = "model-int8" if quantize else "model"
    return run.path / "export" / f"{stem}{SUFFIXES[export_format]}"


def export_run(
    run: Run,
    export_format: str = "onnx",
    output: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Export ``run``'s model; returns the record also written to ``<output>.json``.

    ONNX options: ``opset``, ``dynamic_batch``, ``exporter`` ("torchscript" or "dynamo"),
    ``quantize`` ("int8"), ``inputs`` (a tensor to check parity on).
    """
    if export_format not in FORMATS:
        raise ConfigError(
            f"unknown export format '{export_format}'{closest(export_format, FORMATS)} "
            f"(choose from {', '.join(FORMATS)})"
        )
    if export_format != "onnx":
        unused = [key for key, value in options.items() if value not in (None, False)]
        if unused:
            raise ConfigError(f"{', '.join(unused)}: ONNX options, not for {export_format}")
    path = Path(output) if output else default_output(run, export_format, options.get("quantize"))
    if export_format == "onnx":
        record = export_onnx(run, path, **options)
    elif export_format == "torchscript":
        record = export_torchscript(run, path)
    else:
        record = export_safetensors(run, path)
    record.update(
        file=str(path),
        sha256=sha256_file(path),
        bytes=path.stat().st_size,
        run=run.path.name if run.path else None,
        run_path=str(run.path) if run.path else None,
        model=run.config.model.name,
        torch=torch.__version__,
    )
    atomic_write_json(record_path(path), record)
    return record


def record_path(path: Path) -> Path:
    """Where the JSON record of an exported file goes: beside it, ``<name>.json``."""
    return path.with_name(path.name + ".json")


def export_torchscript(run: Run, path: Path) -> dict[str, Any]:
    """``torch.jit.trace`` of the model, checked against eager PyTorch over test inputs."""
    check_exportable(run, "torchscript")
    inputs, source = test_inputs(run)
    run.model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice
            traced = torch.jit.trace(run.model, inputs[:2], check_trace=False)
    except Exception as error:  # tracing raises many kinds; the user gets one line
        raise FathomError(f"TorchScript trace failed: {str(error).splitlines()[0]}") from None
    parity = compare_outputs(
        torch_outputs(run.model, inputs), torch_outputs(traced, inputs), run.task.is_classifier
    )
    parity["inputs"] = source
    check_parity(parity, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as scratch:
        written = Path(scratch) / "model.pt"
        traced.save(str(written))
        os.replace(written, path)
    return {"format": "torchscript", "parity": parity}


def export_safetensors(run: Run, path: Path) -> dict[str, Any]:
    """The weights (plain state_dict names) with the lineage and data facts as metadata."""
    from safetensors.torch import save

    from fathom.files import atomic_write_bytes
    from fathom.runs.lineage import lineage_of

    check_exportable(run, "safetensors")
    tensors = {key: value.contiguous() for key, value in run.model.state_dict().items()}
    metadata = {
        "fathom.run": run.path.name if run.path else "",
        "fathom.task": run.task.name,
        "fathom.info": json.dumps(run.info.to_dict()),
        "fathom.lineage": json.dumps(lineage_of(run.model)),
    }
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return {"format": "safetensors", "tensors": len(tensors)}
