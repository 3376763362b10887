"""Smoke tests: bench/export.py and bench/serving.py at toy size (the digits CNN)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests_support import run_bench_here

BENCH = Path(__file__).resolve().parents[2] / "bench"
pytestmark = pytest.mark.slow


def run_bench(name: str, output: Path) -> dict:
    """``bench/<name>.py --quick`` in a process of its own (it starts servers, which must find
    fathom on this process's path)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, str(BENCH / f"{name}.py"), "--quick", "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(output.read_text())


def test_export_bench_quick(tmp_path) -> None:
    record = run_bench_here("export.py", tmp_path / "export.json")
    results = record["results"]
    assert results["parity"]["fp32"]["argmax_agreement"] == 1.0
    assert results["bytes"]["onnx_int8"] < results["bytes"]["onnx_fp32"]
    assert all(results[name]["batch1_ms"][0] > 0 for name in ("torch", "onnxruntime"))


def test_serving_bench_quick(tmp_path) -> None:
    results = run_bench("serving", tmp_path / "serving.json")["results"]
    assert results["malformed"]["responses_5xx"] == 0 and results["malformed"]["still_answers"]
    assert results["fixed_rate"]["non_200"] == 0 and results["throughput"]["batching"][0] > 0
    if shutil.which("wrk"):  # Debian's wrk, the second load generator
        measured = results["throughput_wrk"]["batching"][0]
        assert measured["rate"] > 0 and measured["non_2xx"] == 0
