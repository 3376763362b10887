"""bench/selfsupervised.py still runs: its --quick run writes every figure of its table."""

from __future__ import annotations

import pytest

from tests_support import run_bench_here


@pytest.mark.slow
def test_selfsupervised_bench_quick_writes_its_table(tmp_path, shared_datasets) -> None:
    output = tmp_path / "selfsupervised.json"
    record = run_bench_here("selfsupervised.py", output, "--methods", "simclr", "--threads", "2")
    assert record["machine"]["load_average"] and record["load_average_after"]
    simclr, baselines = record["results"]["simclr"], record["results"]["baselines"]
    for value in (
        simclr["knn_accuracy_test"], simclr["linear_probe_accuracy"],
        simclr["few_labels_finetune_accuracy"], baselines["random_linear_probe_accuracy"],
        baselines["supervised_few_labels_accuracy"],
    ):  # fmt: skip
        assert 0.0 <= value <= 1.0
    assert simclr["steps"] == 4 and simclr["pretrain_cpu_seconds"] > 0
