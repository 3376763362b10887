"""bench/cifar10_speed.py (CIFAR-10 and MNIST) runs on a CPU with --smoke, and refuses the full GPU run cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests_support import run_script_here

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "cifar10_speed.py"


def run_script(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        timeout=1800,  # only stops a hang
    )


def test_smoke_writes_all_three_variants(shared_datasets, tmp_path):
    if not (shared_datasets / "cifar10").is_dir():
        pytest.skip("../shared/datasets/cifar10 is not available")
    output = tmp_path / "speed.json"
    arguments = ["--smoke", "--seeds", "0", "--device", "cpu", "--output", str(output)]
    assert run_script_here("cifar10_speed.py", *arguments) == 0  # in this process: no imports
    record = json.loads(output.read_text())
    assert record["smoke"] is True and record["machine"]["device"] == "cpu"
    assert record["examples"]["cifar10"]["train"] == 512 and record["compile"] is False
    assert record["examples"]["mnist"]["train"] == 512
    for name in ("fathom", "resnet18", "mnist"):
        variant = record["variants"][name]
        assert [run["seed"] for run in variant["runs"]] == [0]
        assert 0.0 <= variant["accuracy_mean"] <= 1.0 and variant["seconds_mean"] > 0
    assert record["variants"]["fathom"]["config"]["model"]["name"] == "airbench"
    assert record["variants"]["fathom"]["config"]["task"]["tta"] == ["flip", "translate"]
    assert record["variants"]["mnist"]["config"]["recipe"] == "mnist-speed"
    assert record["variants"]["mnist"]["target_accuracy"] == 0.99
    plain = record["variants"]["resnet18"]["config"]
    assert "tta" not in plain["task"] and plain["schedule"]["start_ratio"] == 0.04  # no recipe


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_full_run_needs_a_gpu(tmp_path, capsys):
    assert run_script_here("cifar10_speed.py", "--output", str(tmp_path / "speed.json")) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "speed.json").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_smoke_with_compile(shared_datasets, tmp_path):
    output = tmp_path / "speed.json"
    result = run_script("--smoke", "--seeds", "0", "1", "--compile", "--output", str(output))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = json.loads(output.read_text())
    assert record["machine"]["device"] == "cuda" and record["machine"]["gpu"]
    assert all(variant["warm_up_seconds"] > 0 for variant in record["variants"].values())
