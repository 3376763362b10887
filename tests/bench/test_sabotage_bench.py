"""bench/sabotage.py still runs: a few rows of each table (``--only``) write the record README's
sabotage table is built from."""

from __future__ import annotations

import pytest

from tests_support import run_bench_here

ROWS = ["healthy", "lr_too_high", "cnn_healthy", "cnn_diverges"]


@pytest.mark.slow
def test_sabotage_bench_quick_writes_both_tables(tmp_path, shared_datasets) -> None:
    record = run_bench_here("sabotage.py", tmp_path / "sabotage.json", "--only", *ROWS)
    assert record["benchmark"] == "sabotage" and record["seeds"] == [0]
    rows = {row["fault"]: row for row in record["rows"]}
    assert set(rows) == {"healthy", "lr_too_high"}
    assert rows["healthy"]["found"] == "1/1" and rows["healthy"]["false_alarms"] == []
    planted = rows["lr_too_high"]
    assert planted["found"] == "1/1" and planted["accuracy_after_remedy"] is not None
    cli = {row["fault"]: row for row in record["cli_rows"]}
    assert set(cli) == {"cnn_healthy", "cnn_diverges"}
    assert cli["cnn_healthy"]["found"] and cli["cnn_healthy"]["metric"] == "accuracy"
    diverged = cli["cnn_diverges"]
    assert diverged["found"] and diverged["remedy"] and "remedy_recovered" in diverged
    assert diverged["healthy_score"] == cli["cnn_healthy"]["score"]
