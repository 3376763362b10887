"""bench/precision_auto.py still runs: its --quick mode writes the side-by-side record (seconds)."""

from __future__ import annotations

import pytest

from tests_support import run_bench_here

pytestmark = pytest.mark.slow


def test_precision_auto_quick_writes_its_record(shared_datasets, tmp_path):
    record = run_bench_here("precision_auto.py", tmp_path / "precision_auto.json")
    kind = record["cpu_kind"]
    assert record["summary"]["auto"]["resolved"] == kind["auto_resolves_to"]
    assert kind["auto_resolves_to"] == ("bf16" if kind["native_bf16"] else "fp32")
    assert record["summary"]["fp32"]["paired_ratio_to_fp32_seconds"] == 1.0
    assert [rep["bf16"]["resolved"] for rep in record["reps"]] == ["bf16"]
