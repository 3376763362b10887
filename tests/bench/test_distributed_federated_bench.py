"""bench/distributed.py and bench/federated.py still run at toy size (--quick)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests_support import run_bench_here

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"
HANG_SECONDS = 1800  # only stops a hang; far above a run's time on a loaded machine


def run_bench(script: str, output: Path) -> dict:
    """``bench/<script> --quick`` in a process of its own (the distributed bench starts torchrun)."""
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=HANG_SECONDS, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(output.read_text())


def test_distributed_bench_quick(tmp_path: Path) -> None:
    record = run_bench("distributed.py", tmp_path / "distributed.json")
    assert set(record["summary"]) == {"2x1", "1x2"}
    assert all(value > 0 for value in record["ratio_2x1_over_1x2"]["per_round"])


def test_federated_bench_quick(tmp_path: Path) -> None:
    record = run_bench_here("federated.py", tmp_path / "federated.json")
    assert len(record["results"]["fedavg_shards"]["accuracy_per_round"]) == 3
    assert "accuracy" in record["results"]["centralised"]["test"]
