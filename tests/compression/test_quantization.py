"""int8 through ONNX Runtime: dynamic for Linear models, replayed from the lineage by size."""

from __future__ import annotations

import torch

from fathom import models
from fathom.compression.quantization import OnnxInt8Model, choose_mode, quantize_int8
from fathom.config import validate_config
from fathom.runs import lineage_of, replay
from fathom.runs.run import Run


def test_a_linear_model_gets_dynamic_int8_that_replays_from_its_lineage(blobs) -> None:
    torch.manual_seed(0)
    model = models.create("mlp", in_features=6, num_classes=3, hidden=[64, 64])
    config = validate_config({"data": {"name": "blobs"}, "model": {"name": "mlp"}})
    run = Run(None, config, blobs.info, model.eval(), blobs)
    assert choose_mode(model) == "dynamic"
    quantized, details = quantize_int8(run, calibration=[blobs.train.inputs[:64]])
    assert details["mode"] == "dynamic" and isinstance(quantized, OnnxInt8Model)
    inputs = blobs.test.inputs
    with torch.no_grad():
        reference, outputs = model(inputs), quantized(inputs)
    assert (reference.argmax(1) == outputs.argmax(1)).float().mean() >= 0.95  # stated
    assert torch.allclose(reference, outputs, atol=0.1 * float(reference.abs().max()))
    rebuilt = replay(lineage_of(quantized))  # an empty buffer of the recorded size
    assert rebuilt.onnx_bytes.shape == quantized.onnx_bytes.shape
    rebuilt.load_state_dict(quantized.state_dict())
    torch.testing.assert_close(rebuilt(inputs), outputs)
    assert rebuilt.source_parameters == sum(p.numel() for p in model.parameters())
