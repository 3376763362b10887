"""The benchmarks in bench/ still run: each ``--quick`` run writes its JSON (toy sizes, small data).

They run in this process (``run_bench_here``), but for the tuning bench (its full run starts
worker processes): it runs as a command, and its timeout only stops a hang (far above a run's
time on a loaded machine)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests_support import run_bench_here

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"
HANG_SECONDS = 1800


def run_bench(script: str, output: Path, *arguments: str) -> dict:
    """``bench/<script> --quick`` in a process of its own."""
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--output", str(output), *arguments],
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(output.read_text())


def test_overhead_quick_writes_its_table(shared_datasets, tmp_path):
    record = run_bench_here(
        "overhead.py", tmp_path / "overhead.json", "--variants", "hand", "fathom", "dataloader"
    )
    assert record["machine"]["torch"] and record["machine"]["cores"] >= 1
    for architecture in ("mlp", "cnn"):
        rows = record["results"][architecture]
        assert rows["hand"]["ratio_to_hand"] == 1.0
        assert rows["fathom"]["median_seconds"] > 0 and len(rows["fathom"]["reps"]) == 1


def test_mnist_quick_writes_its_curves(shared_datasets, tmp_path):
    record = run_bench_here("mnist.py", tmp_path / "mnist.json", "--seeds", "0")
    assert record["quick"] is True
    assert record["reference"]["reference"] == "small" and record["reference"]["epochs"] == 1
    assert record["notes"] and record["load_average_after"]
    assert {"fathom mnist", "fathom mnist-fast", "hand-written reference"} <= set(record["runs"])
    for runs in record["runs"].values():
        curve = runs[0]["curve"]
        assert curve and all(0.0 <= point["accuracy"] <= 1.0 for point in curve)
        assert [point["seconds"] for point in curve] == sorted(point["seconds"] for point in curve)


def test_mnist_quick_runs_the_example_reference_alone(shared_datasets, tmp_path):
    record = run_bench_here(
        "mnist.py", tmp_path / "mnist.json", "--recipes", "--reference", "example"
    )
    assert set(record["runs"]) == {"hand-written reference"}
    run = record["runs"]["hand-written reference"][0]
    assert run["settings"]["network"] == "ExampleNet" == record["reference"]["network"]
    assert record["speedup_to_99.0"] == {}


def test_charlm_quick_compares_nanogpt_and_the_recipe(shared_datasets, tmp_path):
    record = run_bench_here("charlm.py", tmp_path / "charlm.json", "--skip-best")
    reference, fathom_run = record["nanogpt"], record["fathom_same_time"]
    assert reference["iterations"] == 40 and reference["val_loss"] > 0
    assert fathom_run["steps"] > 0 and fathom_run["val_loss"] > 0
    assert fathom_run["curve"] and record["recipe"]["optim"]["name"] == "muon"


def test_charlm_gpu_configuration_builds_and_steps_on_a_cpu(shared_datasets, tmp_path):
    """The GPU run's configuration, checked for shape and wiring on a CPU: built, not trained."""
    record = run_bench_here("charlm.py", tmp_path / "gpu.json", "--gpu-only", "--device", "cpu")
    gpu = record["gpu"]
    assert gpu["device"] == "cpu" and gpu["trained"] is False and "mfu" not in gpu
    assert gpu["precision"] == "bf16" and gpu["gradients_finite"] is True
    model = gpu["model"]
    assert (model["dim"], model["depth"], model["heads"], model["context"]) == (384, 6, 6, 256)
    assert gpu["logits_shape"] == [1, 256, gpu["vocab_size"]]
    # an untrained model predicts about uniformly: loss near log(vocabulary)
    assert abs(gpu["loss"] - math.log(gpu["vocab_size"])) < 0.5
    # 6 blocks of 12 * 384^2 weights (attention 4, MLP 8) plus the tied embedding: ~10.7 M
    blocks = 6 * 12 * 384**2
    assert blocks < gpu["parameters"] < blocks + 384 * (gpu["vocab_size"] + 256 + 100)
    assert gpu["flops_per_token"] > 6 * gpu["parameters"]


def test_tuning_bench_quick_writes_its_record(tmp_path):
    # --postgres= : the PostgreSQL search is tests/tuning/test_workers.py's (two workers there)
    record = run_bench("tuning.py", tmp_path / "tuning.json", "--postgres=")
    assert [run["pruner"] for run in record["search"]][-1] == "none"
    assert record["search"][0]["trials"] == 4 and record["overhead"]["ratio_median"] > 0


def test_nas_bench_quick_writes_its_record(tmp_path):
    record = run_bench_here("nas.py", tmp_path / "nas.json", "--reference", "2")
    assert [run["strategy"] for run in record["runs"]] == ["evolution", "random"]
    assert all(run["trials"] == 3 for run in record["runs"])
    reference = record["reference"]
    assert len(reference["architectures"]) == 2
    assert reference["best_test_accuracy"] == max(
        a["test_accuracy"] for a in reference["architectures"]
    )
    assert all("points_below_best_reference" in run for run in record["runs"])
