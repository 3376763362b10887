"""bench/precision_auto.py still runs: its --quick mode writes the side-by-side record (seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_precision_auto_quick_writes_its_record(shared_datasets, tmp_path):
    output = tmp_path / "precision_auto.json"
    result = subprocess.run(
        [sys.executable, str(BENCH / "precision_auto.py"), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=1800,  # only to stop a hang
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = json.loads(output.read_text())
    kind = record["cpu_kind"]
    assert record["summary"]["auto"]["resolved"] == kind["auto_resolves_to"]
    assert kind["auto_resolves_to"] == ("bf16" if kind["native_bf16"] else "fp32")
    assert record["summary"]["fp32"]["paired_ratio_to_fp32_seconds"] == 1.0
    assert [rep["bf16"]["resolved"] for rep in record["reps"]] == ["bf16"]
