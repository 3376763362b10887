"""Smoke test: bench/compression.py at toy size (digits, one epoch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
pytestmark = pytest.mark.slow


def test_compression_bench_quick(tmp_path) -> None:
    output = tmp_path / "compression.json"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, str(BENCH / "compression.py"), "--quick", "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(output.read_text())["results"]
    assert results["int8"]["smaller"] > 2 and results["pruned"]["fewer_macs"] > 1.5
    assert 0 <= results["distillation"]["distilled_test_accuracy"] <= 1
    assert all(results[key]["after"]["batch_1_ms"] > 0 for key in ("int8", "pruned", "pruned_int8"))
