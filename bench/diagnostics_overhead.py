"""Cost of the training diagnostics (on by default): one epoch with ``train.diagnostics`` on vs off.

Same model, weights, data, seed and threads; the two variants alternate within each repetition
(their order flips every repetition) so machine load hits both alike. The epoch includes the
one-off work of the diagnostics (data checks at fit start, per-example losses at fit end), so a
one-epoch run is the worst case. Both wall-clock and process CPU seconds are recorded: on a shared
machine (this one runs several jobs on 2 cores) CPU time with one thread is the steadier measure.

    python bench/diagnostics_overhead.py            # MNIST 20k rows, MLP and CNN, 1 and 3 epochs
    python bench/diagnostics_overhead.py --runs mlp:1 mlp:3 cnn:1 --repetitions 3
    python bench/diagnostics_overhead.py --quick    # 2k rows, 1 repetition
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_common_arguments, load_average, load_mnist, start_run, write_record  # noqa: E402
from fathom import models  # noqa: E402
from fathom.assemble import build_trainer  # noqa: E402
from fathom.config import build_config  # noqa: E402

ARCHITECTURES = {
    "mlp": {"name": "mlp", "hidden": [512, 512]},
    "cnn": {"name": "cnn", "channels": [16, 32], "hidden": 64},
}


def one_epoch(
    architecture: str, bundle, diagnostics: bool, threads: int, epochs: int = 1
) -> tuple[float, float]:
    options = dict(ARCHITECTURES[architecture])
    name = options.pop("name")
    torch.manual_seed(0)
    extra = {"in_features": 784} if name == "mlp" else {"in_channels": 1, "image_size": 28}
    model = models.create(name, num_classes=10, **extra, **options)
    config = build_config({
        "model": {"name": name},
        "data": {"batch_size": 128},
        "optim": {"name": "sgd", "lr": 0.01},
        "train": {"epochs": epochs, "threads": threads, "diagnostics": diagnostics},
        "run": {"progress": "none"},
    })  # fmt: skip
    trainer = build_trainer(config, model, bundle, None)
    started, cpu = time.perf_counter(), time.process_time()
    trainer.fit()
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "diagnostics_overhead.json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument(
        "--runs", nargs="+", default=["mlp:1", "mlp:3", "cnn:1", "cnn:3"],
        help="architecture:epochs pairs to measure",
    )  # fmt: skip
    args = parser.parse_args()
    machine = start_run(args.threads)
    limit, repetitions = (2000, 1) if args.quick else (20000, args.repetitions)
    bundle = load_mnist(limit)
    bundle.val = None
    results = {}
    pairs = [run.split(":") for run in args.runs]
    runs = [(a, 1) for a in ARCHITECTURES] if args.quick else [(a, int(e)) for a, e in pairs]
    for architecture, epochs in runs:
        one_epoch(architecture, bundle, True, args.threads)  # warm-up (one epoch)
        wall: dict[str, list[float]] = {"off": [], "on": []}
        cpu: dict[str, list[float]] = {"off": [], "on": []}
        loads = []
        for repetition in range(repetitions):
            order = ("off", "on") if repetition % 2 == 0 else ("on", "off")
            for variant in order:
                seconds, cpu_seconds = one_epoch(
                    architecture, bundle, variant == "on", args.threads, epochs
                )
                wall[variant].append(seconds)
                cpu[variant].append(cpu_seconds)
            loads.append(load_average())
        results[f"{architecture}_{epochs}_epochs"] = {
            "wall_seconds": wall,
            "cpu_seconds": cpu,
            "median_wall_ratio": _paired_ratio(wall),
            "median_cpu_ratio": _paired_ratio(cpu),
            "load_average_per_repetition": loads,
        }
        print(
            f"{architecture}, {epochs} epochs: diagnostics on/off = {_paired_ratio(cpu):.3f} CPU time, "
            f"{_paired_ratio(wall):.3f} wall (paired medians)",
            flush=True,
        )
    write_record(args.output, {
        "benchmark": "diagnostics_overhead", "machine": machine, "rows": limit,
        "repetitions": repetitions, "batch_size": 128, "seed": 0, "results": results,
    })  # fmt: skip


def _paired_ratio(times: dict[str, list[float]]) -> float:
    return statistics.median(on / off for on, off in zip(times["on"], times["off"], strict=True))


if __name__ == "__main__":
    main()
