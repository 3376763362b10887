"""Engine overhead: one epoch of the same model by Fathom's Trainer, a hand-written loop and peers.

Every variant trains the same architecture from the same initial weights, with the same
optimizer (SGD, momentum 0.9, constant learning rate), batch size, number of steps and threads:

- ``hand``: a plain PyTorch loop over slices of a tensor shuffled once per epoch (the baseline);
- ``fathom``: ``fathom.assemble.build_trainer`` (TensorLoader, no progress, no checkpoints) and ``fit``;
- ``dataloader``: the plain loop over ``torch.utils.data.DataLoader(TensorDataset, shuffle=True)``;
- ``lightning``: ``lightning.Trainer`` over that DataLoader (logger, progress and checkpoints off);
- ``keras``: Keras 3 on the torch backend, the same layers, ``model.fit`` on arrays.

Peers that are not importable are skipped with a note. The variants are interleaved over the
repetitions (their order rotates each repetition) after one short warm-up each; the table gives
the median seconds per epoch and its ratio to ``hand``. Each timing also records how busy the rest
of the machine was while it ran (``others``: the share of all cores used by other processes).
The peers live in bench/peers.py; the hand-written loop and the load meter in bench/common.py.
The glibc allocator setting Fathom's trainer makes (``train.reuse_cpu_memory``) is process-wide,
so it is made once at start and every variant runs with it.

    python bench/overhead.py            # MNIST, 7 repetitions (about 8 minutes)
    python bench/overhead.py --quick    # a small subset, 1 repetition (seconds)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
from common import (  # noqa: E402
    MEMORY_NOTE,
    LoadMeter,
    add_common_arguments,
    load_mnist,
    plain_steps,
    shuffled_slices,
    start_run,
    write_record,
)
from fathom import models  # noqa: E402
from fathom.assemble import build_trainer  # noqa: E402
from fathom.config import build_config  # noqa: E402
from fathom.data.bundle import DataBundle, Split  # noqa: E402
from peers import Epoch, step_limit  # noqa: E402

VARIANTS = ("hand", "fathom", "dataloader", "lightning", "keras")
ARCHITECTURES = {
    "mlp": {"name": "mlp", "hidden": [512, 512]},
    "cnn": {"name": "cnn", "channels": [16, 32], "hidden": 64},
}
LEARNING_RATE = 0.01


# ------------------------------------------------------------------ models and the variants
def build_model(architecture: str, seed: int) -> nn.Module:
    options = dict(ARCHITECTURES[architecture])
    name = options.pop("name")
    torch.manual_seed(seed)
    extra = {"in_features": 784} if name == "mlp" else {"in_channels": 1, "image_size": 28}
    return models.create(name, num_classes=10, **extra, **options)


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)


def hand_epoch(model: nn.Module, split: Split, batch_size: int, seed: int, steps: int) -> Epoch:
    """The baseline: shuffle the tensors once per epoch, then train on consecutive slices."""
    optimizer = sgd(model)

    def run() -> None:
        slices = shuffled_slices(split, batch_size, torch.Generator().manual_seed(seed))
        plain_steps(model, optimizer, slices, steps)

    return run


def fathom_epoch(
    model: nn.Module, bundle: DataBundle, batch_size: int, seed: int, steps: int
) -> Epoch:
    """Fathom's engine as ``fathom.fit`` wires it, minus the run folder: build_trainer, then fit."""
    config = build_config({
        "data": {"name": "mnist", "batch_size": batch_size, "val_fraction": 0.0},
        "optim": {"name": "sgd", "lr": LEARNING_RATE, "momentum": 0.9},
        "train": {"epochs": 1, "seed": seed, "device": "cpu", "max_steps": step_limit(steps, bundle.train, batch_size)},
        "run": {"progress": "none"},
    })  # fmt: skip
    trainer = build_trainer(config, model, bundle, run_dir=None)

    def run() -> None:
        trainer.fit()

    return run


def prepare(
    variant: str, architecture: str, bundle: DataBundle, batch_size: int, steps: int, seed: int
) -> Epoch:
    """Build everything a variant needs for one epoch (untimed) and return the epoch to time."""
    split = bundle.train
    if variant == "keras":
        options = ARCHITECTURES[architecture]
        return peers.keras_epoch(options, LEARNING_RATE, split, batch_size, seed, steps)
    model = build_model(architecture, seed=0)
    if variant == "fathom":
        return fathom_epoch(model, bundle, batch_size, seed, steps)
    if variant == "dataloader":
        return peers.dataloader_epoch(model, sgd(model), split, batch_size, seed, steps)
    if variant == "lightning":
        return peers.lightning_epoch(model, sgd, split, batch_size, seed, steps)
    return hand_epoch(model, split, batch_size, seed, steps)


# ------------------------------------------------------------------ measuring
def measure(variants: list[str], bundle: DataBundle, args: argparse.Namespace) -> dict[str, Any]:
    """Warm each variant up once, then time one epoch of each, interleaved, ``reps`` times."""
    steps_per_epoch = -(-len(bundle.train) // args.batch_size)
    timings: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {variant: [] for variant in variants} for name in args.models
    }
    for architecture in args.models:
        for variant in variants:
            prepare(variant, architecture, bundle, args.batch_size, args.warmup_steps, seed=99)()
    for rep in range(args.reps):
        rotated = variants[rep % len(variants) :] + variants[: rep % len(variants)]
        for architecture in args.models:
            for variant in rotated:
                epoch = prepare(
                    variant, architecture, bundle, args.batch_size, steps_per_epoch, seed=rep
                )
                timing = time_epoch(epoch)
                timings[architecture][variant].append(timing)
                print(
                    f"  rep {rep + 1}/{args.reps} {architecture:3s} {variant:10s} "
                    f"{timing['seconds']:8.3f} s  (cpu share: own {timing['own']}, "
                    f"others {timing['others']})",
                    flush=True,
                )
    return {"steps_per_epoch": steps_per_epoch, "timings": timings}


def time_epoch(epoch: Epoch) -> dict[str, Any]:
    """Run ``epoch``: its seconds (its own epoch time where it reports one), the call's, the load."""
    meter = LoadMeter()
    meter.start()
    started = time.perf_counter()
    own = epoch()
    wall = time.perf_counter() - started
    load = meter.stop()
    seconds = own if own is not None else wall
    return {"seconds": round(seconds, 4), "call_seconds": round(wall, 4), **load}


def summarise(timings: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Median seconds per epoch and two ratios to ``hand``: of the medians, and the median of the
    ratios within each repetition (paired: both timed minutes apart at most, so slow drifts in
    the machine's speed cancel)."""
    results: dict[str, Any] = {}
    for architecture, by_variant in timings.items():
        hand = [r["seconds"] for r in by_variant["hand"]]
        results[architecture] = {}
        for variant, reps in by_variant.items():
            if not reps:
                continue
            seconds = [r["seconds"] for r in reps]
            loads = [r["others"] for r in reps if r["others"] is not None]
            results[architecture][variant] = {
                "median_seconds": round(statistics.median(seconds), 4),
                "ratio_to_hand": round(statistics.median(seconds) / statistics.median(hand), 4),
                "paired_ratio_to_hand": round(
                    statistics.median(s / h for s, h in zip(seconds, hand, strict=True)), 4
                ),
                "median_own_cpu_share": round(statistics.median(r["own"] for r in reps), 3),
                "median_others_cpu_share": round(statistics.median(loads), 3) if loads else None,
                "reps": reps,
            }
    return results


def print_table(results: dict[str, Any], steps: int, batch_size: int) -> None:
    print(
        f"\nseconds per epoch ({steps} steps of {batch_size}), median over repetitions; cpu: share of all cores"
    )
    print(
        f"{'model':5s} {'variant':11s} {'median s':>9s} {'× hand':>7s} {'paired ×':>9s} {'µs/step vs hand':>16s} {'own cpu':>8s} {'others':>7s}"
    )
    for architecture, by_variant in results.items():
        hand = by_variant["hand"]["median_seconds"]
        for variant, row in by_variant.items():
            extra = (row["median_seconds"] - hand) / steps * 1e6
            others = row["median_others_cpu_share"]
            print(
                f"{architecture:5s} {variant:11s} {row['median_seconds']:9.3f} {row['ratio_to_hand']:7.3f} "
                f"{row['paired_ratio_to_hand']:9.3f} {extra:16.0f} {row['median_own_cpu_share']:8.3f} "
                f"{others if others is not None else '-':>7}"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="2,048 examples, 1 repetition: a smoke test"
    )
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="train on this many examples")
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument(
        "--models", nargs="+", choices=list(ARCHITECTURES), default=list(ARCHITECTURES)
    )
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    add_common_arguments(parser, "overhead.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.limit, args.warmup_steps = 1, args.limit or 2048, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    missing = peers.missing_peers(args.variants)
    variants = [v for v in args.variants if v not in missing]
    if "hand" not in variants:
        variants.insert(0, "hand")
    for variant, reason in missing.items():
        print(f"skipping {variant}: {reason}")
    machine = start_run(args.threads)  # again: a peer's import must not change the threads
    bundle = load_mnist(args.limit)
    measured = measure(variants, bundle, args)
    results = summarise(measured["timings"])
    print_table(results, measured["steps_per_epoch"], args.batch_size)
    settings = {
        "batch_size": args.batch_size, "threads": args.threads, "reps": args.reps,
        "examples": len(bundle.train), "steps_per_epoch": measured["steps_per_epoch"],
        "warmup_steps": args.warmup_steps, "optimizer": f"SGD(lr={LEARNING_RATE}, momentum=0.9)",
        "models": {name: ARCHITECTURES[name] for name in args.models},
    }  # fmt: skip
    record = {
        "benchmark": "overhead", "machine": machine, "settings": settings,
        "peer_versions": peers.peer_versions(variants), "skipped": missing,
        "notes": [MEMORY_NOTE], "results": results,
    }  # fmt: skip
    write_record(args.output, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
