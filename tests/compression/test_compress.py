"""``fathom compress`` end to end on digits: new runs that load (fresh process), evaluate and
predict; int8 within a stated accuracy of fp32; distillation; bad input in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fathom.api.export import export_model
from fathom.cli import main
from fathom.compression import OnnxInt8Model
from fathom.runs import load
from fathom.serving.model import load_served_model
from serving_support import train_digits, train_text

INT8_TOLERANCE = 0.03  # stated: int8 test accuracy within 3 points of fp32 on digits


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return train_digits(tmp_path_factory.mktemp("compress"))


def predictions_in_fresh_process(run_dir: Path, inputs_file: Path) -> torch.Tensor:
    script = (
        "import sys, torch, fathom\n"
        "run = fathom.load(sys.argv[1])\n"
        "inputs = torch.load(sys.argv[2], weights_only=True)\n"
        "torch.save(run.predict(inputs), sys.argv[2] + '.out')\n"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", script, str(run_dir), str(inputs_file)],
                   check=True, env=environment, timeout=600)  # fmt: skip
    return torch.load(f"{inputs_file}.out", weights_only=True)


def test_structured_pruning_run_predicts_the_same_after_reload(digits_run, tmp_path, capsys):
    assert main(["compress", str(digits_run), "--prune", "0.5", "--structured",
                 "--finetune-epochs", "1", "--max-accuracy-drop", "100", "--name", "pruned"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "MACs per example" in printed and "latency, batch 64" in printed
    pruned_dir = digits_run.parent / "pruned"
    summary = json.loads((pruned_dir / "compression.json").read_text())
    assert summary["after"]["macs"] < summary["before"]["macs"] / 2
    assert summary["after"]["parameters"] < summary["before"]["parameters"]
    run = load(pruned_dir)
    assert [step["name"] for step in run.summary["lineage"]["transforms"]] == ["prune_channels"]
    inputs = torch.randn(16, 1, 8, 8)
    torch.save(inputs, tmp_path / "inputs.pt")
    torch.testing.assert_close(predictions_in_fresh_process(pruned_dir, tmp_path / "inputs.pt"),
                               run.predict(inputs))  # fmt: skip
    assert (pruned_dir / "report.html").exists() and "test" in run.summary
    assert main(["card", str(pruned_dir), "--limit", "30", "--curve-points", "2"]) == 0
    card = json.loads((pruned_dir / "card" / "card.json").read_text())  # size before and after
    assert card["size_before"]["run"] == digits_run.name
    assert card["size"]["parameters"] < card["size_before"]["parameters"]


def test_int8_run_is_within_the_stated_accuracy_and_evaluates_and_predicts(digits_run, capsys):
    assert main(["compress", str(digits_run), "--quantize", "int8", "--name", "int8",
                 "--max-accuracy-drop", "100"]) == 0  # fmt: skip
    capsys.readouterr()
    quantized = load(digits_run.parent / "int8")
    assert isinstance(quantized.model, OnnxInt8Model)
    summary = json.loads((quantized.path / "compression.json").read_text())
    assert summary["stages"][0]["details"]["mode"] == "static"  # a CNN: calibrated int8
    assert summary["after"]["bytes"] < summary["before"]["bytes"] / 3
    fp32_accuracy = load(digits_run).evaluate("test")["accuracy"]
    int8_accuracy = quantized.evaluate("test")["accuracy"]
    assert abs(int8_accuracy - fp32_accuracy) <= INT8_TOLERANCE
    assert main(["eval", str(quantized.path)]) == 0
    probabilities = quantized.predict(torch.randn(3, 1, 8, 8))
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(3))
    for backend in ("torch", "onnxruntime"):  # fathom serve, both ways
        served = load_served_model(quantized.path, backend=backend)
        np.testing.assert_allclose(
            served.predict(np.zeros((2, 1, 8, 8), np.float32)).sum(1), 1, rtol=1e-5
        )
    record = export_model(quantized, "onnx", quantized.path / "export" / "model.onnx")
    assert record["exporter"] == "fathom compress" and record["parity"]["argmax_agreement"] == 1.0


def test_compress_with_qat_records_it_and_stays_within_budget(digits_run, capsys) -> None:
    source = digits_run
    assert main(["compress", str(source), "--quantize", "int8", "--qat-epochs", "1",
                 "--max-accuracy-drop", "100", "--name", "qat"]) == 0  # fmt: skip
    capsys.readouterr()
    summary = json.loads((source.parent / "qat" / "compression.json").read_text())
    details = summary["stages"][0]["details"]
    assert details["qat_epochs"] == 1 and details["qat_mode"] == "static"
    assert details["qat_layers"] >= 3  # the CNN's convolutions and linear layers
    quantized = load(source.parent / "qat")
    fp32 = load(source).evaluate("test")["accuracy"]
    assert quantized.evaluate("test")["accuracy"] >= fp32 - 0.03  # the fine-tune may add some
    assert main(["compress", str(source), "--qat-epochs", "1"]) == 2
    assert "--quantize int8" in capsys.readouterr().err


def test_distil_into_a_small_student(digits_run, capsys) -> None:
    teacher_weights = (digits_run / "model.safetensors").read_bytes()
    assert main(["compress", str(digits_run), "--distill-into", "cnn", "--student",
                 "channels=[4,8]", "--student", "hidden=16", "--distill-epochs", "1",
                 "--distill-set", "data.augment={}", "--distill-set", "optim.lr=0.002",
                 "--max-accuracy-drop", "100", "--name", "student"]) == 0  # fmt: skip
    assert "note" not in capsys.readouterr().out  # the digits teacher has no label smoothing
    student = load(digits_run.parent / "student")
    assert student.config.model.options()["channels"] == [4, 8]
    assert student.config.optim.lr == 0.002 and not student.config.data.augment
    assert student.summary["task"] == "classification"
    assert (digits_run / "model.safetensors").read_bytes() == teacher_weights


def test_iterative_magnitude_pruning_reports_each_step(digits_run, capsys) -> None:
    assert main(["compress", str(digits_run), "--prune", "0.6", "--prune-steps", "2",
                 "--finetune-epochs", "0", "--max-accuracy-drop", "100", "--name", "sparse"]) == 0  # fmt: skip
    capsys.readouterr()
    run = load(digits_run.parent / "sparse")
    summary = json.loads((run.path / "compression.json").read_text())
    steps = [stage["details"] for stage in summary["stages"]]
    assert [round(step["sparsity"], 2) for step in steps] == [0.3, 0.6]
    assert all(step["macs"] and step["batch_1_ms"] > 0 for step in steps)
    assert summary["after"]["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert [t["params"]["amount"] for t in run.summary["lineage"]["transforms"]] == [0.3, 0.6]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ([], "nothing to do"),
        (["--prune", "1.5"], "between 0 and 1"),
        (["--prune", "0.5", "--prune-steps", "0"], "--prune-steps"),
        (["--quantize", "int4"], "unknown quantization"),
        (["--distill-into", "cnn", "--student", "channels"], "KEY=VALUE"),
        (["--distill-into", "mlp", "--distill-set", "data.name=mnist"], "how the student trains"),
        (["--distill-into", "mlp", "--distill-set", "train.epochs=3"], "--distill-epochs"),
        (["--distill-into", "mlp", "--distill-set", "data.augmented={}"], "how the student trains"),
        (["--quantize", "int8", "--distill-set", "optim.lr=0.1"], "give --distill-into"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(digits_run, capsys, arguments, message):
    assert main(["compress", str(digits_run), *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_a_folder_that_is_no_run_is_refused(tmp_path, capsys) -> None:
    assert main(["compress", str(tmp_path), "--quantize", "int8"]) == 2
    assert "not a Fathom run folder" in capsys.readouterr().err


def test_a_text_classifier_quantizes_on_its_token_ids(tmp_path, capsys) -> None:
    """Calibration batches and the MAC count use integer token ids, not floats."""
    text_run = train_text(tmp_path)
    assert main(["compress", str(text_run), "--quantize", "int8", "--name", "text-int8"]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "text-int8" / "compression.json").read_text())
    assert summary["before"]["macs"] > 0  # a model this small gains no bytes from int8
    run = load(tmp_path / "text-int8")
    tokens = torch.randint(1, 10, (4, 16))
    assert run.predict(tokens).shape[0] == 4
