"""Compression: pruning (unstructured and structured), int8 quantization and distillation.

``compress(run, CompressionPlan(...))`` distils, prunes and quantizes a classification run within
an accuracy budget and writes a new run whose lineage records every transform (``prune_magnitude``,
``prune_channels``, ``onnx_int8``), so it loads, evaluates, predicts and serves like any run.
"""

from fathom.compression.pipeline import CompressionPlan, compress
from fathom.compression.pruning import plan_channel_pruning, prune_magnitude, sparsity
from fathom.compression.quantization import OnnxInt8Model, cpu_instruction_sets, quantize_int8

__all__ = [
    "CompressionPlan",
    "OnnxInt8Model",
    "compress",
    "cpu_instruction_sets",
    "plan_channel_pruning",
    "prune_magnitude",
    "quantize_int8",
    "sparsity",
]
