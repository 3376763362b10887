"""Smoke test: bench/compression.py at toy size (digits, one epoch)."""

from __future__ import annotations

import pytest

from tests_support import run_bench_here

pytestmark = pytest.mark.slow


def test_compression_bench_quick(tmp_path) -> None:
    results = run_bench_here("compression.py", tmp_path / "compression.json")["results"]
    assert results["int8"]["smaller"] > 2 and results["pruned"]["fewer_macs"] > 1.5
    students = results["distillation"]["students"]
    assert set(students) == {"mlp_2x300", "cnn_quarter"}
    row = students["mlp_2x300"]["per_seed"][0]
    assert 0 <= row["distilled_test_accuracy"] <= 1 and 0 <= row["alone_test_accuracy"] <= 1
    keys = ("int8", "qat_int8", "pruned", "pruned_int8")
    assert all(results[key]["after"]["batch_1_ms"] > 0 for key in keys)
    assert results["qat_int8"]["stages"][0]["details"]["qat_epochs"] == 1
