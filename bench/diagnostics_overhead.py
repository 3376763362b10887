"""Cost of the training diagnostics (on by default): whole `fathom train` runs, diagnostics on vs off.

Five workloads, each a fresh `fathom train` process (as a user runs it: imports, recipe, run
folder, report; import costs that land inside training show): the embedded default (`fathom train`: CNN on digits, 30 epochs), MNIST (the recipe's CNN
on a subset, fp32), a text classifier (the sentiment recipe), the character LM (tinyshakespeare,
capped by train.max_steps) and a GAN (mnist-gan, capped). The two variants alternate within each
repetition (the order flips every repetition) so machine load hits both alike; the figure is the
median of the paired on/off ratios. Recorded per run: training seconds (run.json's
duration_seconds, what `fathom train` reports: fit start to fit end, the doctor included), the
whole process's wall-clock seconds (start-up, data loading, test evaluation, report) and its CPU
seconds. ``--quick``: tiny sizes, one repetition (a smoke test, not a measurement).

    python bench/diagnostics_overhead.py                     # 3 repetitions, ~10 min on 2 cores
    python bench/diagnostics_overhead.py --workloads default --repetitions 5
    python bench/diagnostics_overhead.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA_DIR, add_common_arguments, load_average, start_run, write_record  # noqa: E402

# name: (dataset, overrides, overrides in --quick mode)
WORKLOADS: dict[str, tuple[str | None, list[str], list[str]]] = {
    "default": (None, [], ["train.epochs=2"]),
    "mnist": ("mnist", ["data.limit=12000", "train.epochs=1", "train.precision=fp32"],
              ["data.limit=1000", "train.epochs=1", "train.precision=fp32"]),
    "sentiment": ("sentiment", ["train.epochs=1"], ["train.max_steps=20"]),
    "charlm": ("tinyshakespeare", ["train.max_steps=12", "train.precision=fp32"],
               ["train.max_steps=3", "train.precision=fp32", "model.depth=1", "model.dim=32"]),
    "gan": ("mnist", ["recipe=mnist-gan", "train.max_steps=300", "data.limit=12000"],
            ["recipe=mnist-gan", "train.max_steps=10", "data.limit=1000"]),
}  # fmt: skip
LOAD_NOTE = (
    "Measured on a shared 2-core machine (other engineers' tests running): absolute seconds "
    "vary with the load; the paired on/off ratios are the figure to read."
)


def one_run(
    workload: str, diagnostics: bool, args: argparse.Namespace, folder: Path, quick: bool = False
) -> dict:
    dataset, overrides, small = WORKLOADS[workload]
    settings = [
        *(small if quick or args.quick else overrides),
        f"train.diagnostics={str(diagnostics).lower()}",
        f"train.threads={args.threads}",
        f"data.data_dir={DATA_DIR}",
        f"run.dir={folder}",
        "run.progress=none",
    ]
    command = [sys.executable, "-m", "fathom.cli", "train", *([dataset] if dataset else []),
               *settings, "--name", "run", "--quiet"]  # fmt: skip
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if result.returncode != 0:
        raise SystemExit(f"{workload}: {' '.join(command)}\n{result.stderr[-3000:]}")
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    summary = json.loads((folder / "run" / "run.json").read_text())
    shutil.rmtree(folder / "run", ignore_errors=True)
    return {"train": float(summary["duration_seconds"]), "wall": wall, "cpu": cpu,
            "steps": summary.get("steps")}  # fmt: skip


def measure(workload: str, args: argparse.Namespace, repetitions: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        one_run(workload, True, args, Path(folder), quick=True)  # warm-up: imports, caches
        runs: dict[str, list[dict]] = {"off": [], "on": []}
        loads = []
        for repetition in range(repetitions):
            order = ("off", "on") if repetition % 2 == 0 else ("on", "off")
            for variant in order:
                runs[variant].append(one_run(workload, variant == "on", args, Path(folder)))
            loads.append(load_average())
    result: dict[str, Any] = {"settings": WORKLOADS[workload][2 if args.quick else 1]}
    for measure_name in ("train", "wall", "cpu"):
        off = [run[measure_name] for run in runs["off"]]
        on = [run[measure_name] for run in runs["on"]]
        result[f"{measure_name}_seconds"] = {"off": _rounded(off), "on": _rounded(on)}
        result[f"{measure_name}_ratio"] = round(
            statistics.median(b / a for a, b in zip(off, on, strict=True)), 3
        )
    result["steps"] = runs["on"][0]["steps"]
    result["load_average_per_repetition"] = loads
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "diagnostics_overhead.json")
    parser.set_defaults(threads=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    args = parser.parse_args()
    machine = start_run(args.threads)
    repetitions = 1 if args.quick else args.repetitions
    results = {}
    for workload in args.workloads:
        results[workload] = row = measure(workload, args, repetitions)
        print(
            f"{workload:10s} {row['steps']} steps: on/off (paired medians) "
            f"training {row['train_ratio']:.3f}, whole call {row['wall_ratio']:.3f}, "
            f"CPU {row['cpu_ratio']:.3f}; training s off {row['train_seconds']['off']} "
            f"on {row['train_seconds']['on']}",
            flush=True,
        )
    write_record(args.output, {
        "benchmark": "diagnostics_overhead", "machine": machine, "quick": args.quick,
        "repetitions": repetitions, "threads": args.threads, "load_note": LOAD_NOTE,
        "results": results,
    })  # fmt: skip


def _rounded(values: list[float]) -> list[float]:
    return [round(value, 3) for value in values]


if __name__ == "__main__":
    main()
