"""bench/robustness.py, bench/fairness.py and bench/calibration.py still run at toy size."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests_support import run_bench_here

pytestmark = pytest.mark.slow


def run_bench(script: str, output: Path, *arguments: str) -> dict:
    return run_bench_here(script, output, "--threads", "2", *arguments)


def test_robustness_quick(shared_datasets, tmp_path):
    record = run_bench("robustness.py", tmp_path / "r.json", "--run-dir", str(tmp_path / "runs"))
    for row in record["rows"].values():
        assert 0 <= row["pgd_accuracy"] <= 1 and row["train_cpu_seconds"] > 0
        assert 0 <= row["pgd_accuracy_step_0.01"] <= 1  # Madry's and Wong's step beside 2.5 ε / 50


def test_fairness_quick(shared_datasets, tmp_path):
    record = run_bench("fairness.py", tmp_path / "f.json")
    methods = [row["method"] for row in record["rows"]]
    assert methods[0] == "logistic regression" and len(methods) == 6
    assert all(0 <= row["demographic_parity_difference"] <= 1 for row in record["rows"])


def test_calibration_quick(tmp_path):
    record = run_bench("calibration.py", tmp_path / "c.json", "--run-dir", str(tmp_path / "runs"))
    assert record["temperature"] > 0 and record["test"]["after"]["nll"] > 0
