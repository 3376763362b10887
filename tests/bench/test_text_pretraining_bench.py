"""bench/text_pretraining.py still runs: its --quick run writes both arms at every label count."""

from __future__ import annotations

import pytest

from tests_support import run_bench_here


@pytest.mark.slow
def test_text_pretraining_bench_quick_writes_its_table(tmp_path, shared_datasets) -> None:
    output = tmp_path / "text_pretraining.json"
    record = run_bench_here("text_pretraining.py", output, "--threads", "1")
    assert record["machine"]["load_average"] and record["load_average_after"]
    assert 0 <= record["per_seed"]["0"]["pretraining"]["test_masked_accuracy"] <= 1
    for labels in ("all labels", "32 per class", "8 per class"):
        row = record["summary"][labels]
        assert {"from scratch", "MLM-pretrained, fine-tuned", "gain (paired)"} == set(row)
        assert all(
            0 <= row[arm]["mean"] <= 1 for arm in ("from scratch", "MLM-pretrained, fine-tuned")
        )
