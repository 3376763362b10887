"""``fathom.compress``: prune, quantize and/or distil a run into a new run (see fathom.compression)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fathom.compression import CompressionPlan
from fathom.compression import compress as compress_run
from fathom.runs import Run, load


def compress(
    run: Run | str | Path,
    *,
    prune: float | None = None,
    structured: bool = False,
    quantize: str | None = None,
    distill_into: str | None = None,
    max_accuracy_drop: float = 0.5,
    **options: Any,
) -> Run:
    """Compress a classification run within ``max_accuracy_drop`` accuracy points; returns the
    new run (a folder beside the source, its lineage replayed by ``fathom.load``).

    ``prune``: fraction of weights (unstructured) or channels (``structured=True``) to remove;
    ``quantize="int8"``: ONNX Runtime int8 (static for CNNs, dynamic otherwise);
    ``distill_into``: a student model name. Other options are ``CompressionPlan`` fields:
    ``prune_scope``, ``prune_steps``, ``quantize_mode``, ``student_options``, ``temperature``, ``alpha``,
    ``distill_epochs``, ``distill_overrides`` (how the student trains: ``["data.augment={}"]``),
    ``finetune_epochs``, ``qat_epochs`` (quantization-aware fine-tuning
    before int8), ``name``.
    """
    from fathom.errors import ConfigError

    try:
        plan = CompressionPlan(prune=prune, structured=structured, quantize=quantize,
                               distill_into=distill_into, max_accuracy_drop=max_accuracy_drop,
                               **options)  # fmt: skip
    except TypeError as error:
        raise ConfigError(f"fathom.compress: {error}") from None
    loaded = run if isinstance(run, Run) else load(run)
    return compress_run(loaded, plan)
