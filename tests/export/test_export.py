"""Export: ONNX parity (both exporters, fp32 and int8), TorchScript, safetensors, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from fathom.cli import main
from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError
from fathom.export import check_exportable, export_run, onnx_session, read_metadata, run_session
from fathom.files import sha256_file
from fathom.registry import TASKS
from fathom.runs import load
from serving_support import train_digits, train_text


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return train_digits(tmp_path_factory.mktemp("export"))


def reference(run_dir: Path, inputs: torch.Tensor) -> np.ndarray:
    run = load(run_dir)
    with torch.no_grad():
        return run.model(inputs).numpy()


def test_onnx_export_matches_pytorch_and_records_it(digits_run, capsys) -> None:
    assert main(["export", str(digits_run), "--format", "onnx"]) == 0
    printed = capsys.readouterr().out
    assert "argmax agreement 100.00%" in printed and "max abs difference" in printed
    file = digits_run / "export" / "model.onnx"
    record = json.loads((digits_run / "export" / "model.onnx.json").read_text())
    assert record["sha256"] == sha256_file(file) and record["run"] == "digits"
    assert record["parity"]["argmax_agreement"] == 1.0
    assert record["parity"]["max_abs_difference"] < 1e-4
    assert record["parity"]["inputs"].startswith("test split")
    metadata = read_metadata(file)
    assert metadata["run"] == "digits" and json.loads(metadata["info"])["input_shape"] == [1, 8, 8]
    session = onnx_session(file)
    assert session.get_inputs()[0].shape[0] == 1  # fixed batch without --dynamic-batch
    inputs = torch.rand(3, 1, 8, 8)
    outputs = run_session(session, inputs.numpy())  # run one example at a time
    np.testing.assert_allclose(outputs, reference(digits_run, inputs), atol=1e-4)


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_dynamic_batch_and_int8_on_both_exporters(digits_run, tmp_path, exporter) -> None:
    run = load(digits_run)
    fp32 = export_run(run, "onnx", tmp_path / "m.onnx", dynamic_batch=True, exporter=exporter)
    int8 = export_run(
        run, "onnx", tmp_path / "q.onnx", dynamic_batch=True, exporter=exporter, quantize="int8"
    )
    session = onnx_session(tmp_path / "m.onnx")
    assert not isinstance(session.get_inputs()[0].shape[0], int)
    inputs = torch.rand(5, 1, 8, 8)
    np.testing.assert_allclose(
        run_session(session, inputs.numpy()), reference(digits_run, inputs), atol=1e-4
    )
    assert fp32["parity"]["argmax_agreement"] == 1.0
    assert int8["quantize"] == "int8" and int8["bytes"] < fp32["bytes"] / 2
    assert int8["parity"]["argmax_agreement"] >= 0.9  # stated: int8 within 10% argmax of fp32


def test_text_classifier_exports_with_its_padding_mask(tmp_path) -> None:
    run = load(train_text(tmp_path))
    record = export_run(run, "onnx", tmp_path / "text.onnx", dynamic_batch=True)
    assert record["parity"]["argmax_agreement"] == 1.0
    padded = torch.zeros(3, 16, dtype=torch.long)
    padded[0, :3], padded[1, :1], padded[2, :] = 5, 7, 3  # different lengths in one batch
    outputs = run_session(onnx_session(tmp_path / "text.onnx"), padded.numpy())
    np.testing.assert_allclose(outputs, reference(run.path, padded), atol=1e-4)


def test_torchscript_and_safetensors(digits_run, tmp_path) -> None:
    from safetensors import safe_open

    run = load(digits_run)
    traced = export_run(run, "torchscript", tmp_path / "m.pt")
    assert traced["parity"]["max_abs_difference"] == pytest.approx(0.0, abs=1e-5)
    inputs = torch.rand(4, 1, 8, 8)
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    np.testing.assert_allclose(
        loaded(inputs).detach().numpy(), reference(digits_run, inputs), atol=1e-5
    )
    export_run(run, "safetensors", tmp_path / "m.safetensors")
    with safe_open(str(tmp_path / "m.safetensors"), "pt") as file:
        assert set(file.keys()) == set(run.model.state_dict())
        assert json.loads(file.metadata()["fathom.lineage"])["base"]["name"] == "cnn"


def fake_run(task: str, model: nn.Module, **extra) -> SimpleNamespace:
    info = DataInfo("x", "classification", (16,), 2, extra=extra)
    config = SimpleNamespace(model=SimpleNamespace(name="lstm"))
    # the task class: its name and class attributes (graph_predictions) are what export reads
    return SimpleNamespace(task=TASKS.get(task), model=model, info=info, config=config)


@pytest.mark.parametrize(
    "task", ["gan", "vae", "diffusion", "language_model", "seq2seq", "forecast"]
)
def test_refused_tasks_in_one_line(task) -> None:
    with pytest.raises(ConfigError, match=f"this is a {task} run") as error:
        check_exportable(fake_run(task, nn.Linear(2, 2)), "onnx")
    assert "\n" not in str(error.value)


def test_recurrent_text_models_are_refused_for_graphs_only() -> None:
    run = fake_run(
        "classification", nn.Sequential(nn.Embedding(10, 4), nn.LSTM(4, 4)), vocab_size=10
    )
    for graph in ("onnx", "torchscript"):
        with pytest.raises(ConfigError, match="recurrent text model"):
            check_exportable(run, graph)
    check_exportable(run, "safetensors")


def test_bad_export_requests_exit_2(digits_run, capsys) -> None:
    assert main(["export", str(digits_run), "--format", "tflite"]) == 2
    assert "unknown export format 'tflite'" in capsys.readouterr().err
    assert main(["export", str(digits_run), "--format", "safetensors", "--opset", "17"]) == 2
    assert main(["export", str(digits_run), "--exporter", "magic"]) == 2
    assert main(["export", str(digits_run.parent / "missing")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("fathom export: error:") for line in errors)
