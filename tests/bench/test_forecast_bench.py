"""bench/forecast.py still runs: its --quick run writes the table of every method's MASE."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "forecast.py"


@pytest.mark.slow
def test_forecast_bench_quick_writes_its_table(tmp_path) -> None:
    output = tmp_path / "forecast.json"
    result = subprocess.run([sys.executable, str(BENCH), "--quick", "--output", str(output)],
                            capture_output=True, text=True, timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = json.loads(output.read_text())
    assert record["machine"]["load_average"] and record["load_average_after"]
    summary = record["results"]["sunspots"]["summary"]
    assert {"neural model", "naive", "seasonal naive", "ARIMA"} <= set(summary)
    assert summary["seasonal naive"]["mase"]["mean"] > 0
