"""bench/robustness.py, bench/fairness.py and bench/calibration.py still run at toy size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, output: Path, *arguments: str) -> dict:
    command = [
        sys.executable,
        str(BENCH / script),
        "--quick",
        "--threads",
        "2",
        "--output",
        str(output),
        *arguments,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(output.read_text())


def test_robustness_quick(shared_datasets, tmp_path):
    record = run_bench("robustness.py", tmp_path / "r.json", "--run-dir", str(tmp_path / "runs"))
    for row in record["rows"].values():
        assert 0 <= row["pgd_accuracy"] <= 1 and row["train_cpu_seconds"] > 0


def test_fairness_quick(shared_datasets, tmp_path):
    record = run_bench("fairness.py", tmp_path / "f.json")
    methods = [row["method"] for row in record["rows"]]
    assert methods[0] == "logistic regression" and len(methods) == 6
    assert all(0 <= row["demographic_parity_difference"] <= 1 for row in record["rows"])


def test_calibration_quick(tmp_path):
    record = run_bench("calibration.py", tmp_path / "c.json", "--run-dir", str(tmp_path / "runs"))
    assert record["temperature"] > 0 and record["test"]["after"]["nll"] > 0
