"""bench/forecast.py still runs: its --quick run writes the table of every method's MASE."""

from __future__ import annotations

import pytest

from tests_support import run_bench_here


@pytest.mark.slow
def test_forecast_bench_quick_writes_its_table(tmp_path) -> None:
    record = run_bench_here("forecast.py", tmp_path / "forecast.json")
    assert record["machine"]["load_average"] and record["load_average_after"]
    summary = record["results"]["sunspots"]["summary"]
    assert {"neural model", "naive", "seasonal naive", "ARIMA"} <= set(summary)
    assert summary["seasonal naive"]["mase"]["mean"] > 0
