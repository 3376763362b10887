"""Engine overhead: one epoch of the same model by Fathom's Trainer, a hand-written loop and peers.

Every variant trains the same architecture from the same initial weights, with the same
optimizer (SGD, momentum 0.9, constant learning rate), batch size, number of steps and threads:

- ``hand``: a plain PyTorch loop over slices of a tensor shuffled once per epoch (the baseline);
- ``fathom``: ``fathom.api.build_trainer`` (TensorLoader, no progress, no checkpoints) and ``fit``;
- ``dataloader``: the plain loop over ``torch.utils.data.DataLoader(TensorDataset, shuffle=True)``;
- ``lightning``: ``lightning.Trainer`` over that DataLoader (logger, progress and checkpoints off);
- ``keras``: Keras 3 on the torch backend, the same layers, ``model.fit`` on arrays.

Peers that are not importable are skipped with a note. The variants are interleaved over the
repetitions (their order rotates each repetition) after one short warm-up each; the table gives
the median seconds per epoch and its ratio to ``hand``. Each timing also records how busy the rest
of the machine was while it ran (``others``: the share of all cores used by other processes).

    python bench/overhead.py            # MNIST, 5 repetitions (a few minutes)
    python bench/overhead.py --quick    # a small subset, 1 repetition (seconds)
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch
import torch.nn.functional as F
from torch import nn

import fathom
from fathom import models
from fathom.api import build_trainer
from fathom.config import build_config
from fathom.data.bundle import DataBundle, Split

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE.parent.parent / "shared" / "datasets"
VARIANTS = ("hand", "fathom", "dataloader", "lightning", "keras")
ARCHITECTURES = {
    "mlp": {"name": "mlp", "hidden": [512, 512]},
    "cnn": {"name": "cnn", "channels": [16, 32], "hidden": 64},
}
LEARNING_RATE = 0.01
Epoch = Callable[[], float | None]  # runs one epoch; returns its own epoch time where it has one


# ------------------------------------------------------------------ machine and load
def machine_info() -> dict[str, Any]:
    """CPU model, cores, threads and versions: the fields every bench result carries."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "fathom": fathom.__version__,
        "platform": platform.platform(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def _busy_jiffies() -> tuple[int, int] | None:
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle, sum(fields[:8])


class LoadMeter:
    """How busy the machine was between ``start`` and ``stop``, as shares of all its cores.

    ``others``: CPU time of other processes (what /proc/stat shows of them); ``own``: this
    process's CPU time. A low ``own`` with low ``others`` means CPU time taken outside this
    machine's view (a busy host); either way the timing was disturbed.
    """

    def start(self) -> None:
        self.jiffies, self.own, self.wall = _busy_jiffies(), sum(os.times()[:2]), time.perf_counter()

    def stop(self) -> dict[str, float | None]:
        now, own, wall = _busy_jiffies(), sum(os.times()[:2]), time.perf_counter()
        capacity = (wall - self.wall) * (os.cpu_count() or 1)
        shares: dict[str, float | None] = {"own": round((own - self.own) / capacity, 3), "others": None}
        if now is not None and self.jiffies is not None and now[1] > self.jiffies[1]:
            tick = os.sysconf("SC_CLK_TCK")
            busy = (now[0] - self.jiffies[0]) / tick - (own - self.own)
            shares["others"] = round(max(0.0, busy / ((now[1] - self.jiffies[1]) / tick)), 3)
        return shares


# ------------------------------------------------------------------ data and models
def load_mnist(limit: int | None) -> DataBundle:
    """MNIST's 60,000 training images, normalised; ``limit`` keeps a seeded subset."""
    return fathom.data.load(
        "mnist", data_dir=DATA_DIR, val_fraction=0.0, limit=limit, download=False
    )


def build_model(architecture: str, seed: int) -> nn.Module:
    options = dict(ARCHITECTURES[architecture])
    name = options.pop("name")
    torch.manual_seed(seed)
    extra = {"in_features": 784} if name == "mlp" else {"in_channels": 1, "image_size": 28}
    return models.create(name, num_classes=10, **extra, **options)


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)


# ------------------------------------------------------------------ the variants
def hand_epoch(model: nn.Module, split: Split, batch_size: int, seed: int, steps: int) -> Epoch:
    """The baseline: shuffle the tensors once per epoch, then train on consecutive slices."""
    optimizer = sgd(model)

    def run() -> None:
        model.train()
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
        inputs, targets = split.inputs[order], split.targets[order]
        for start in range(0, min(len(split), steps * batch_size), batch_size):
            loss = F.cross_entropy(model(inputs[start : start + batch_size]), targets[start : start + batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run


def fathom_epoch(model: nn.Module, bundle: DataBundle, batch_size: int, seed: int, steps: int) -> Epoch:
    """Fathom's engine as ``fathom.fit`` wires it, minus the run folder: build_trainer, then fit."""
    config = build_config({
        "data": {"name": "mnist", "batch_size": batch_size, "val_fraction": 0.0},
        "optim": {"name": "sgd", "lr": LEARNING_RATE, "momentum": 0.9},
        "train": {"epochs": 1, "seed": seed, "device": "cpu", "max_steps": partial(steps, bundle.train, batch_size)},
        "run": {"progress": "none"},
    })  # fmt: skip
    trainer = build_trainer(config, model, bundle, run_dir=None)

    def run() -> None:
        trainer.fit()

    return run


def partial(steps: int, split: Split, batch_size: int) -> int | None:
    """``steps`` when it stops short of a full epoch (warm-up), else None (no step limit)."""
    return steps if steps * batch_size < len(split) else None


def dataloader_epoch(model: nn.Module, split: Split, batch_size: int, seed: int, steps: int) -> Epoch:
    """The plain loop over a DataLoader of a TensorDataset (per-example indexing and collation)."""
    optimizer = sgd(model)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(split.inputs, split.targets),
        batch_size=batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )

    def run() -> None:
        model.train()
        for step, (inputs, targets) in enumerate(loader):
            if step >= steps:
                break
            loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run


def lightning_epoch(model: nn.Module, split: Split, batch_size: int, seed: int, steps: int) -> Epoch:
    """``lightning.Trainer.fit`` for one epoch; the epoch is timed by its epoch hooks."""
    import lightning

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")

    class Classifier(lightning.LightningModule):
        def __init__(self, network: nn.Module) -> None:
            super().__init__()
            self.network = network

        def training_step(self, batch: Any, batch_index: int) -> torch.Tensor:
            inputs, targets = batch
            return F.cross_entropy(self.network(inputs), targets)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return sgd(self.network)

    class EpochTimer(lightning.Callback):
        seconds: float | None = None

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            self.started = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            self.seconds = time.perf_counter() - self.started

    timer = EpochTimer()
    trainer = lightning.Trainer(
        max_epochs=1, max_steps=partial(steps, split, batch_size) or -1, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=[timer],
    )  # fmt: skip
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(split.inputs, split.targets),
        batch_size=batch_size, shuffle=True, num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip

    def run() -> float | None:
        trainer.fit(Classifier(model), loader)
        return timer.seconds

    return run


def keras_model(architecture: str) -> Any:
    """The same layers in Keras 3 (channels first, like the torch models)."""
    import keras
    from keras import layers

    stack: list[Any] = [keras.Input((1, 28, 28))]
    if architecture == "mlp":
        stack += [layers.Flatten()]
        stack += [layers.Dense(width, activation="relu") for width in ARCHITECTURES["mlp"]["hidden"]]
    else:
        for width in ARCHITECTURES["cnn"]["channels"]:
            stack += [
                layers.Conv2D(width, 3, padding="same", use_bias=False, data_format="channels_first"),
                layers.MaxPooling2D(2, data_format="channels_first"),
                layers.BatchNormalization(axis=1),
                layers.ReLU(),
            ]
        stack += [layers.Flatten(), layers.Dense(ARCHITECTURES["cnn"]["hidden"], activation="relu")]
    return keras.Sequential([*stack, layers.Dense(10)])


def keras_epoch(architecture: str, split: Split, batch_size: int, seed: int, steps: int) -> Epoch:
    """``keras.Model.fit`` for one epoch on numpy arrays; the epoch is timed by its callbacks."""
    import keras

    keras.utils.set_random_seed(seed)
    network = keras_model(architecture)
    network.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    count = min(len(split), steps * batch_size)
    inputs, targets = split.inputs[:count].numpy(), split.targets[:count].numpy()

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds = time.perf_counter() - self.started

    timer = EpochTimer()

    def run() -> float | None:
        network.fit(inputs, targets, batch_size=batch_size, epochs=1, shuffle=True, verbose=0, callbacks=[timer])
        return timer.seconds

    return run


def available_peers() -> dict[str, str]:
    """Peers that cannot be imported, with the reason (an empty dict when all are there)."""
    missing = {}
    for variant, module in (("lightning", "lightning"), ("keras", "keras")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                __import__(module)
        except Exception as error:  # noqa: BLE001 - any import failure skips the peer
            missing[variant] = f"{module} not importable: {type(error).__name__}: {error}"
    if "keras" not in missing:
        import keras

        if keras.backend.backend() != "torch":
            missing["keras"] = f"keras backend is {keras.backend.backend()!r}, not torch"
    return missing


def prepare(variant: str, architecture: str, bundle: DataBundle, args: argparse.Namespace, steps: int, seed: int) -> Epoch:
    """Build everything a variant needs for one epoch (untimed) and return the epoch to time."""
    if variant == "keras":
        return keras_epoch(architecture, bundle.train, args.batch_size, seed, steps)
    model = build_model(architecture, seed=0)
    if variant == "fathom":
        return fathom_epoch(model, bundle, args.batch_size, seed, steps)
    factory = {"hand": hand_epoch, "dataloader": dataloader_epoch, "lightning": lightning_epoch}[variant]
    return factory(model, bundle.train, args.batch_size, seed, steps)


# ------------------------------------------------------------------ measuring
def measure(variants: list[str], bundle: DataBundle, args: argparse.Namespace) -> dict[str, Any]:
    """Warm each variant up once, then time one epoch of each, interleaved, ``reps`` times."""
    steps_per_epoch = -(-len(bundle.train) // args.batch_size)
    timings: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {variant: [] for variant in variants} for name in args.models
    }
    for architecture in args.models:
        for variant in variants:
            prepare(variant, architecture, bundle, args, args.warmup_steps, seed=99)()
    meter = LoadMeter()
    for rep in range(args.reps):
        rotated = variants[rep % len(variants) :] + variants[: rep % len(variants)]
        for architecture in args.models:
            for variant in rotated:
                epoch = prepare(variant, architecture, bundle, args, steps_per_epoch, seed=rep)
                meter.start()
                started = time.perf_counter()
                own = epoch()
                wall = time.perf_counter() - started
                load = meter.stop()
                seconds = own if own is not None else wall
                timings[architecture][variant].append({"seconds": round(seconds, 4), "call_seconds": round(wall, 4), **load})
                print(f"  rep {rep + 1}/{args.reps} {architecture:3s} {variant:10s} {seconds:8.3f} s  (cpu share: own {load['own']}, others {load['others']})", flush=True)
    return {"steps_per_epoch": steps_per_epoch, "timings": timings}


def summarise(timings: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Median seconds per epoch, ratio to ``hand`` and the median load of the other processes."""
    results: dict[str, Any] = {}
    for architecture, by_variant in timings.items():
        baseline = statistics.median(r["seconds"] for r in by_variant["hand"])
        results[architecture] = {}
        for variant, reps in by_variant.items():
            if not reps:
                continue
            median = statistics.median(r["seconds"] for r in reps)
            loads = [r["others"] for r in reps if r["others"] is not None]
            results[architecture][variant] = {
                "median_seconds": round(median, 4),
                "ratio_to_hand": round(median / baseline, 4),
                "median_others": round(statistics.median(loads), 3) if loads else None,
                "reps": reps,
            }
    return results


def print_table(results: dict[str, Any], steps: int, batch_size: int) -> None:
    print(f"\nseconds per epoch ({steps} steps of {batch_size}), median over repetitions")
    print(f"{'model':5s} {'variant':11s} {'median s':>9s} {'× hand':>7s} {'µs/step over hand':>18s} {'others':>7s}")
    for architecture, by_variant in results.items():
        hand = by_variant["hand"]["median_seconds"]
        for variant, row in by_variant.items():
            extra = (row["median_seconds"] - hand) / steps * 1e6
            print(
                f"{architecture:5s} {variant:11s} {row['median_seconds']:9.3f} {row['ratio_to_hand']:7.3f} "
                f"{extra:18.0f} {row['median_others'] if row['median_others'] is not None else '-':>7}"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,048 examples, 1 repetition: a smoke test")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--limit", type=int, default=None, help="train on this many examples")
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--models", nargs="+", choices=list(ARCHITECTURES), default=list(ARCHITECTURES))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--output", type=Path, default=HERE / "results" / "overhead.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.limit, args.warmup_steps = 1, args.limit or 2048, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    missing = available_peers() if {"lightning", "keras"} & set(args.variants) else {}
    variants = [v for v in args.variants if v not in missing]
    if "hand" not in variants:
        variants.insert(0, "hand")
    for variant, reason in missing.items():
        print(f"skipping {variant}: {reason}")
    torch.set_num_threads(args.threads)  # a peer's import must not change it
    bundle = load_mnist(args.limit)
    machine = machine_info()
    print(f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} ({args.threads} threads), load {machine['load_average']}")
    measured = measure(variants, bundle, args)
    results = summarise(measured["timings"])
    print_table(results, measured["steps_per_epoch"], args.batch_size)
    record = {
        "benchmark": "overhead",
        "machine": machine,
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "settings": {
            "batch_size": args.batch_size, "threads": args.threads, "reps": args.reps,
            "examples": len(bundle.train), "steps_per_epoch": measured["steps_per_epoch"],
            "warmup_steps": args.warmup_steps, "optimizer": f"SGD(lr={LEARNING_RATE}, momentum=0.9)",
            "models": {name: ARCHITECTURES[name] for name in args.models},
        },  # fmt: skip
        "peer_versions": peer_versions(variants),
        "skipped": missing,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0


def peer_versions(variants: list[str]) -> dict[str, str]:
    versions = {}
    for name in ("lightning", "keras"):
        if name in variants:
            versions[name] = sys.modules[name].__version__
    return versions


if __name__ == "__main__":
    sys.exit(main())
