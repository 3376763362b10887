"""Export: a run's model as ONNX (fp32 or int8), TorchScript or safetensors, checked on export.

``export_run(run, "onnx", dynamic_batch=True)`` writes RUN/export/model.onnx and a JSON record
beside it (sha256, run name, parity against PyTorch); ``export_onnx(run, path, quantize="int8")``
is the int8 path other capabilities (compression) call.
"""

from fathom.export.checks import FORMATS, check_exportable
from fathom.export.formats import export_run, record_path
from fathom.export.onnx import export_onnx, onnx_session, read_metadata, run_session

__all__ = [
    "FORMATS",
    "check_exportable",
    "export_onnx",
    "export_run",
    "onnx_session",
    "read_metadata",
    "record_path",
    "run_session",
]
