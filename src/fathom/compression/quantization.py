"""int8 quantization through ONNX Runtime, kept inside a normal run.

Why ONNX Runtime: torch.ao.quantization is deprecated in torch 2.13 and torchao ran ~10x slower
than fp32 on this CPU, while ONNX Runtime's int8 kernels ran faster than PyTorch fp32 here
(bench/compression.py). Linear/recurrent models get dynamic int8 (``quantize_dynamic``: int8
weights, activations quantized per batch); models with convolutions get static post-training
int8 (``quantize_static``: activation ranges calibrated on training batches, QDQ format).

The quantized graph lives in the run as the ``onnx_int8`` lineage transform: ``OnnxInt8Model`` is
an ``nn.Module`` whose only tensor is the ONNX file's bytes (a uint8 buffer, so model.safetensors
holds the int8 graph and nothing else) and whose forward runs it in an ONNX Runtime session. The
transform's parameter is the byte count, so ``fathom.load`` replays it into an empty buffer of the
right size and then loads the bytes; eval, predict and serve use it like any model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fathom.errors import ConfigError, FathomError

MODES = ("dynamic", "static")
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class OnnxInt8Model(nn.Module):
    """An int8 ONNX graph held as bytes and run by ONNX Runtime (CPU, inference only)."""

    def __init__(self, size: int, parameters: int, macs: int | None = None) -> None:
        super().__init__()
        self.register_buffer("onnx_bytes", torch.zeros(int(size), dtype=torch.uint8))
        self.source_parameters = int(parameters)  # of the fp32 model it was made from
        self.source_macs = macs
        self._session: Any = None
        self._session_threads = 0

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._session = None  # new bytes: a new session

    def session(self) -> Any:
        threads = torch.get_num_threads()
        if self._session is None or self._session_threads != threads:
            self._session_threads = threads
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads  # as many as PyTorch uses
            # No busy-waiting between runs: spinning threads starve PyTorch's in one process.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                self._session = onnxruntime.InferenceSession(
                    self.onnx_bytes.numpy().tobytes(), options, providers=["CPUExecutionProvider"]
                )
            except Exception as error:  # ONNX Runtime's own exception types: one line
                raise FathomError(f"the int8 ONNX graph cannot be loaded ({error})") from None
        return self._session

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        session = self.session()
        declared = session.get_inputs()[0]
        dtype = np.int64 if "int64" in declared.type else np.float32
        array = np.ascontiguousarray(inputs.detach().cpu().numpy(), dtype=dtype)
        outputs = session.run(None, {declared.name: array})[0]
        return torch.from_numpy(outputs).to(inputs.device)


def onnx_int8(model: nn.Module, size: int, parameters: int, macs: int | None = None) -> nn.Module:
    """The lineage transform: an empty ``OnnxInt8Model`` of ``size`` bytes (weights fill it)."""
    if int(size) <= 0:
        raise ConfigError(f"onnx_int8: size must be positive, got {size}")
    return OnnxInt8Model(size, parameters, macs)


def choose_mode(model: nn.Module, mode: str | None = None) -> str:
    """``static`` for models with convolutions (calibrated), ``dynamic`` for Linear/LSTM/GRU."""
    if mode is not None:
        if mode not in MODES:
            raise ConfigError(f"unknown quantization mode '{mode}' (choose from dynamic, static)")
        return mode
    return "static" if any(isinstance(m, CONVOLUTIONS) for m in model.modules()) else "dynamic"


class BatchReader:
    """An ONNX Runtime ``CalibrationDataReader`` over a list of input batches."""

    def __init__(self, input_name: str, batches: list[torch.Tensor]) -> None:
        self.feeds = iter([{input_name: batch.numpy().astype(np.float32)} for batch in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)

    def rewind(self) -> None:  # pragma: no cover - the MinMax calibrator reads once
        pass


def quantize_onnx(
    fp32_path: Path, target: Path, mode: str, calibration: list[torch.Tensor] | None
) -> None:
    """``quantize_dynamic`` or ``quantize_static`` (QDQ, per-channel int8 weights, uint8
    activations calibrated with MinMax over ``calibration`` batches)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    from fathom.export.onnx import INPUT_NAME, quiet_logging

    try:
        with quiet_logging():
            if mode == "dynamic":
                quantize_dynamic(str(fp32_path), str(target), weight_type=QuantType.QInt8)
            else:
                if not calibration:
                    raise ConfigError("static quantization needs calibration batches")
                quantize_static(
                    str(fp32_path), str(target), BatchReader(INPUT_NAME, calibration),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                )  # fmt: skip
    except FathomError:
        raise
    except Exception as error:  # the quantizer raises many kinds; the user gets one line
        raise FathomError(f"int8 quantization ({mode}) failed: {error}") from None


def quantize_int8(
    run: Any, mode: str | None = None, calibration: list[torch.Tensor] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """``run``'s model as an ``OnnxInt8Model`` recorded in its lineage, and what was done."""
    from fathom.compression.pruning import multiply_accumulates, parameter_count
    from fathom.export.checks import example_inputs
    from fathom.export.onnx import export_onnx
    from fathom.runs import apply_transform

    chosen = choose_mode(run.model, mode)
    parameters = parameter_count(run.model)
    shape = run.info.input_shape
    macs = multiply_accumulates(run.model, shape, example_inputs(run.info, 1)) if shape else None
    with tempfile.TemporaryDirectory(prefix="fathom-quantize-") as scratch:
        fp32 = Path(scratch) / "model.onnx"
        export_onnx(run, fp32, dynamic_batch=True, inputs=calibration[0] if calibration else None)
        target = Path(scratch) / "model-int8.onnx"
        quantize_onnx(fp32, target, chosen, calibration)
        payload = target.read_bytes()
    model = apply_transform(
        run.model, "onnx_int8", size=len(payload), parameters=parameters, macs=macs
    )
    model.onnx_bytes.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    model.eval()
    return model, {"mode": chosen, "backend": "onnxruntime", "bytes": len(payload)}


def cpu_instruction_sets() -> list[str]:
    """The CPU's vector instruction sets that matter for int8 kernels (Linux /proc/cpuinfo)."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    return [flag for flag in wanted if flag in flags]
