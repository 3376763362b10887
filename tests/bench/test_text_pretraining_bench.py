"""bench/text_pretraining.py still runs: its --quick run writes both arms at every label count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "text_pretraining.py"


@pytest.mark.slow
def test_text_pretraining_bench_quick_writes_its_table(tmp_path, shared_datasets) -> None:
    output = tmp_path / "text_pretraining.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--threads", "1", "--output", str(output)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = json.loads(output.read_text())
    assert record["machine"]["load_average"] and record["load_average_after"]
    assert 0 <= record["per_seed"]["0"]["pretraining"]["test_masked_accuracy"] <= 1
    for labels in ("all labels", "32 per class", "8 per class"):
        row = record["summary"][labels]
        assert {"from scratch", "MLM-pretrained, fine-tuned", "gain (paired)"} == set(row)
        assert all(
            0 <= row[arm]["mean"] <= 1 for arm in ("from scratch", "MLM-pretrained, fine-tuned")
        )
