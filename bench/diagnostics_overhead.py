"""Cost of the training diagnostics (on by default): one epoch with ``train.diagnostics`` on vs off.

Same model, weights, data, seed and threads; the two variants alternate within each repetition
(their order flips every repetition) so machine load hits both alike. The epoch includes the
one-off work of the diagnostics (data checks at fit start, per-example losses at fit end).

    python bench/diagnostics_overhead.py            # MNIST 20k rows, MLP and CNN, 5 repetitions
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
from fathom.api import build_trainer  # noqa: E402
from fathom.config import build_config  # noqa: E402

ARCHITECTURES = {
    "mlp": {"name": "mlp", "hidden": [512, 512]},
    "cnn": {"name": "cnn", "channels": [16, 32], "hidden": 64},
}


def one_epoch(architecture: str, bundle, diagnostics: bool, threads: int) -> float:
    options = dict(ARCHITECTURES[architecture])
    name = options.pop("name")
    torch.manual_seed(0)
    extra = {"in_features": 784} if name == "mlp" else {"in_channels": 1, "image_size": 28}
    model = models.create(name, num_classes=10, **extra, **options)
    config = build_config({
        "model": {"name": name},
        "data": {"batch_size": 128},
        "optim": {"name": "sgd", "lr": 0.01},
        "train": {"epochs": 1, "threads": threads, "diagnostics": diagnostics},
        "run": {"progress": "none"},
    })  # fmt: skip
    trainer = build_trainer(config, model, bundle, None)
    started = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "diagnostics_overhead.json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    machine = start_run(args.threads)
    limit, repetitions = (2000, 1) if args.quick else (20000, args.repetitions)
    bundle = load_mnist(limit)
    bundle.val = None
    results = {}
    for architecture in ARCHITECTURES:
        one_epoch(architecture, bundle, True, args.threads)  # warm-up
        times: dict[str, list[float]] = {"off": [], "on": []}
        loads = []
        for repetition in range(repetitions):
            order = ("off", "on") if repetition % 2 == 0 else ("on", "off")
            for variant in order:
                times[variant].append(
                    one_epoch(architecture, bundle, variant == "on", args.threads)
                )
            loads.append(load_average())
        ratios = [on / off for on, off in zip(times["on"], times["off"], strict=True)]
        results[architecture] = {
            "seconds_off": times["off"],
            "seconds_on": times["on"],
            "paired_ratios": ratios,
            "median_ratio": statistics.median(ratios),
            "load_average_per_repetition": loads,
        }
        print(
            f"{architecture}: diagnostics on/off = {statistics.median(ratios):.3f} (paired median)"
        )
    write_record(args.output, {
        "benchmark": "diagnostics_overhead", "machine": machine, "rows": limit,
        "repetitions": repetitions, "batch_size": 128, "seed": 0, "results": results,
    })  # fmt: skip


if __name__ == "__main__":
    main()
