"""bench/selfsupervised.py still runs: its --quick run writes every figure of its table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "selfsupervised.py"


@pytest.mark.slow
def test_selfsupervised_bench_quick_writes_its_table(tmp_path, shared_datasets) -> None:
    output = tmp_path / "selfsupervised.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--methods", "simclr", "--threads", "2",
         "--output", str(output)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = json.loads(output.read_text())
    assert record["machine"]["load_average"] and record["load_average_after"]
    simclr, baselines = record["results"]["simclr"], record["results"]["baselines"]
    for value in (
        simclr["knn_accuracy_test"], simclr["linear_probe_accuracy"],
        simclr["few_labels_finetune_accuracy"], baselines["random_linear_probe_accuracy"],
        baselines["supervised_few_labels_accuracy"],
    ):  # fmt: skip
        assert 0.0 <= value <= 1.0
    assert simclr["steps"] == 4 and simclr["pretrain_cpu_seconds"] > 0
