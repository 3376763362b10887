"""Time to 99.0% MNIST test accuracy on CPU: Fathom's recipes beside a hand-written PyTorch loop.

Both train on MNIST's 60,000 training images (Fathom as its recipe says: the recipe may carve a
validation split and evaluate it each epoch, which counts as training time) and are scored on the
official 10,000 test images at regular points, ``--probes-per-epoch`` times an epoch. The clock
stops while a probe evaluates, so the times are training time only. The reference is the plain
small CNN of PyTorch's MNIST example (conv32 → conv64 → max-pool → fc128, dropout) trained with
Adam and a one-cycle learning rate, in NCHW float32, as one writes it without tuning for a CPU.

    python bench/mnist.py                       # recipes mnist and mnist-fast, seeds 0 1 2
    python bench/mnist.py --quick               # a smoke test on a small subset (seconds)
    python bench/mnist.py --recipes mnist --seeds 0 --set train.epochs=4   # exploring
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.api import build_model, build_trainer, load_data, resolve_config, seed_everything
from fathom.data.bundle import DataBundle, Split
from fathom.engine import Callback, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import DATA_DIR, HERE, LoadMeter, machine_info  # noqa: E402

TARGET, STRETCH, BUDGET_SECONDS = 0.990, 0.994, 120.0
REFERENCE = {"epochs": 3, "batch_size": 128, "max_lr": 0.003, "optimizer": "Adam", "schedule": "OneCycleLR"}


class Probes:
    """A training clock that stops while the test set is scored, and the (time, accuracy) curve."""

    def __init__(self, test: Split, limit: int | None = None) -> None:
        count = min(limit or len(test), len(test))
        self.test = Split(test.inputs[:count], test.targets[:count])
        self.curve: list[dict[str, float]] = []
        self.meter = LoadMeter()

    def start(self) -> None:
        self.started, self.paused = time.perf_counter(), 0.0
        self.meter.start()

    def seconds(self) -> float:
        return time.perf_counter() - self.started - self.paused

    def record(self, model: nn.Module, epoch: float, channels_last: bool = False) -> None:
        seconds, entered = self.seconds(), time.perf_counter()
        accuracy = test_accuracy(model, self.test, channels_last)
        self.curve.append({"seconds": round(seconds, 3), "epoch": round(epoch, 3), "accuracy": accuracy})
        print(f"    {seconds:7.2f} s  epoch {epoch:5.2f}  test accuracy {accuracy:.4f}", flush=True)
        self.paused += time.perf_counter() - entered

    def summary(self) -> dict[str, Any]:
        reached = [point["seconds"] for point in self.curve if point["accuracy"] >= TARGET]
        within = [p["accuracy"] for p in self.curve if p["seconds"] <= BUDGET_SECONDS]
        stretch = [p["seconds"] for p in self.curve if p["accuracy"] >= STRETCH]
        return {
            "seconds_to_99.0": reached[0] if reached else None,
            "seconds_to_99.4": stretch[0] if stretch else None,
            "best_within_120s": max(within) if within else None,
            "final_accuracy": self.curve[-1]["accuracy"] if self.curve else None,
            "train_seconds": round(self.seconds(), 3),
            "cpu_share": self.meter.stop(),
            "curve": self.curve,
        }


@torch.no_grad()
def test_accuracy(model: nn.Module, test: Split, channels_last: bool = False) -> float:
    was_training = model.training
    model.eval()
    correct = 0
    for inputs, targets in zip(test.inputs.split(1000), test.targets.split(1000), strict=True):
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        correct += int((model(inputs).argmax(1) == targets).sum())
    model.train(was_training)
    return correct / len(test)


class ProbeCallback(Callback):
    """Scores the test set every ``1 / per_epoch`` of an epoch, with the training clock stopped."""

    order = 1000

    def __init__(self, probes: Probes, per_epoch: int) -> None:
        self.probes, self.per_epoch = probes, per_epoch

    def fit_start(self, trainer: Trainer) -> None:
        self.probes.start()

    def batch_end(self, trainer: Trainer) -> None:
        steps = len(trainer.train_loader)
        position = trainer.train_loader.position
        marks = {round(steps * part / self.per_epoch) for part in range(1, self.per_epoch)}
        if position in marks:
            self._record(trainer, trainer.state.epoch + position / steps)

    def epoch_end(self, trainer: Trainer) -> None:
        self._record(trainer, float(trainer.state.epoch))

    def _record(self, trainer: Trainer, epoch: float) -> None:
        model = trainer.ema.shadow if trainer.ema is not None else trainer.model
        self.probes.record(model, epoch, trainer.config.channels_last)


# ------------------------------------------------------------------ Fathom's recipe
def run_fathom(recipe: str, seed: int, bundle_cache: dict[Any, DataBundle], args: argparse.Namespace) -> dict[str, Any]:
    """Train with ``recipe`` as ``fathom.fit`` would (no run folder), probing the test set."""
    overrides = [f"data.data_dir={DATA_DIR}", "data.download=false", "run.progress=none", f"train.seed={seed}", *args.set]
    config = resolve_config({"recipe": recipe}, dataset="mnist", overrides=overrides)
    if args.quick:
        config = resolve_config(config, overrides=["train.epochs=1", f"data.limit={args.quick_examples}"])
    key = (config.data.val_fraction, config.data.limit, seed)
    if key not in bundle_cache:
        bundle_cache[key] = load_data(config)
    bundle = bundle_cache[key]
    seed_everything(seed)
    model = build_model(config, bundle.info)
    probes = Probes(bundle.test, args.quick_examples if args.quick else None)
    seed_everything(seed)
    trainer = build_trainer(config, model, bundle, run_dir=None, callbacks=[ProbeCallback(probes, args.probes_per_epoch)])
    print(f"  fathom recipe {recipe}, seed {seed}: {config.train.epochs} epochs", flush=True)
    trainer.fit()
    return {"recipe": recipe, "seed": seed, "config": config.to_dict(), **probes.summary()}


# ------------------------------------------------------------------ the hand-written reference
class ReferenceNet(nn.Module):
    """PyTorch's MNIST example network: conv32 → conv64 → max-pool → fc128 → fc10, with dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(inputs)))), 2)
        hidden = F.relu(self.fc1(F.dropout(hidden, 0.25, self.training).flatten(1)))
        return self.fc2(F.dropout(hidden, 0.5, self.training))


def run_reference(train: Split, test: Split, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """The plain loop: shuffle each epoch, slice batches, Adam with a one-cycle learning rate."""
    torch.manual_seed(seed)
    model = ReferenceNet()
    epochs, batch_size = (1 if args.quick else args.reference_epochs), REFERENCE["batch_size"]
    steps = -(-len(train) // batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=REFERENCE["max_lr"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, REFERENCE["max_lr"], total_steps=epochs * steps)
    probes = Probes(test, args.quick_examples if args.quick else None)
    marks = {round(steps * part / args.probes_per_epoch) for part in range(1, args.probes_per_epoch + 1)}
    print(f"  reference, seed {seed}: {epochs} epochs", flush=True)
    probes.start()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train))
        inputs, targets = train.inputs[order], train.targets[order]
        for step in range(steps):
            batch = slice(step * batch_size, (step + 1) * batch_size)
            loss = F.cross_entropy(model(inputs[batch]), targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if step + 1 in marks:
                probes.record(model, epoch + (step + 1) / steps)
    return {"seed": seed, "settings": {**REFERENCE, "epochs": epochs}, **probes.summary()}


# ------------------------------------------------------------------ report
def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and spread over seeds of the headline numbers."""
    result: dict[str, Any] = {}
    for key in ("seconds_to_99.0", "seconds_to_99.4", "best_within_120s", "final_accuracy", "train_seconds"):
        values = [run[key] for run in runs if run[key] is not None]
        result[key] = {
            "median": statistics.median(values) if values else None,
            "mean": round(statistics.fmean(values), 4) if values else None,
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else None,
            "reached": f"{len(values)}/{len(runs)}",
        }
    return result


def print_table(summary: dict[str, Any]) -> None:
    print(f"\n{'run':22s} {'s to 99.0%':>11s} {'s to 99.4%':>11s} {'best ≤120 s':>12s} {'final':>7s} {'train s':>8s} {'seeds reached 99.0':>19s}")
    for name, row in summary.items():
        def cell(key: str, fmt: str) -> str:
            value = row[key]["median"]
            return format(value, fmt) if value is not None else "-"
        print(
            f"{name:22s} {cell('seconds_to_99.0', '11.1f')} {cell('seconds_to_99.4', '11.1f')} "
            f"{cell('best_within_120s', '12.4f')} {cell('final_accuracy', '7.4f')} {cell('train_seconds', '8.1f')} "
            f"{row['seconds_to_99.0']['reached']:>19s}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch on a small subset: a smoke test")
    parser.add_argument("--quick-examples", type=int, default=1024)
    parser.add_argument("--recipes", nargs="*", default=["mnist", "mnist-fast"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--reference-seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--reference-epochs", type=int, default=REFERENCE["epochs"])
    parser.add_argument("--probes-per-epoch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for the recipes")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "mnist.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = machine_info()
    print(f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} ({args.threads} threads), load {machine['load_average']}")
    runs: dict[str, list[dict[str, Any]]] = {}
    cache: dict[Any, DataBundle] = {}
    for seed in args.seeds:
        for recipe in args.recipes:
            runs.setdefault(f"fathom {recipe}", []).append(run_fathom(recipe, seed, cache, args))
    if args.reference_seeds:
        plain = fathom_plain_split(args)
        for seed in args.reference_seeds:
            runs.setdefault("hand-written reference", []).append(run_reference(plain.train, plain.test, seed, args))
    summary = {name: aggregate(group) for name, group in runs.items()}
    print_table(summary)
    ratios = speedups(summary)
    for name, ratio in ratios.items():
        print(f"{name}: reference time to 99.0% / its time to 99.0% = {ratio}")
    record = {
        "benchmark": "mnist", "machine": machine, "threads": args.threads,
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "targets": {"accuracy": TARGET, "stretch": STRETCH, "budget_seconds": BUDGET_SECONDS},
        "seeds": {"fathom": args.seeds, "reference": args.reference_seeds}, "quick": args.quick,
        "summary": summary, "speedup_to_99.0": ratios, "runs": runs,
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0


def fathom_plain_split(args: argparse.Namespace) -> DataBundle:
    """All 60,000 training images and the test set, normalised as Fathom does, for the reference."""
    from fathom.data import load

    limit = args.quick_examples if args.quick else None
    return load("mnist", data_dir=DATA_DIR, val_fraction=0.0, limit=limit, download=False)


def speedups(summary: dict[str, Any]) -> dict[str, float | None]:
    reference = summary.get("hand-written reference", {}).get("seconds_to_99.0", {}).get("median")
    ratios: dict[str, float | None] = {}
    for name, row in summary.items():
        if name.startswith("fathom"):
            own = row["seconds_to_99.0"]["median"]
            ratios[name] = round(reference / own, 3) if reference and own else None
    return ratios


if __name__ == "__main__":
    sys.exit(main())
