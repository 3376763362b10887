"""``fathom.export_model``: a run's model as ONNX, TorchScript or safetensors (see fathom.export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fathom.export import export_run
from fathom.runs import Run, load


def export_model(
    run: Run | str | Path,
    format: str = "onnx",  # noqa: A002 - the name the command line uses (--format)
    output: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Export a run (or run folder); returns the record written beside the file.

    ONNX options: ``opset``, ``dynamic_batch``, ``exporter`` ("torchscript" or "dynamo"),
    ``quantize`` ("int8").
    """
    loaded = run if isinstance(run, Run) else load(run)
    return export_run(loaded, format, output, **options)
