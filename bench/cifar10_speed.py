"""Training speed on a GPU: Fathom's cifar10-speed recipe beside a plain ResNet-18, and mnist-speed.

Both run through Fathom's trainer in one process, on the same data, with the GPU speed path:
the dataset and its augmentation live on the device (``TensorLoader``), channels-last, bf16
autocast, ``torch.compile`` and fused SGD, and the trainer synchronises with the host only at
epoch ends (``train.log_every_steps`` is set past the end). Compilation stays out of the timed
region: each variant first trains one epoch on random images of the same shapes (full and last
partial batch) and evaluates them, then every seed re-initialises the same compiled model.
The clock covers ``trainer.fit()`` only (training, no evaluation); the test set is scored
afterwards with the recipe's test-time augmentation, as airbench times its runs.

    python bench/cifar10_speed.py                      # GPU: all three variants, seeds 0-4
    python bench/cifar10_speed.py --variants mnist     # MNIST to 99% (goal: under 1 s)
    python bench/cifar10_speed.py --variants fathom --seeds 0 1 2 3 4 5 6 7 8 9
    python bench/cifar10_speed.py --set train.epochs=9 # explore the recipe
    python bench/cifar10_speed.py --smoke              # CPU or GPU: 512 images, 1 epoch

Without CUDA only ``--smoke`` runs (no compile unless ``--compile``); the full run refuses.
Data: the project's JPEG-decoded CIFAR-10 copy (../shared/datasets/cifar10, see its SOURCE.md),
so accuracies are close to, not identical with, results on the official files.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fathom  # noqa: E402
from common import DATA_DIR, LoadMeter, add_common_arguments, start_run, write_record  # noqa: E402
from fathom.assemble import build_model, build_trainer, resolve_config  # noqa: E402
from fathom.config import FathomConfig  # noqa: E402
from fathom.data.bundle import DataBundle, Split  # noqa: E402
from fathom.data.loader import make_loader  # noqa: E402
from fathom.engine import evaluate  # noqa: E402

TARGETS = {"fathom": 0.94, "resnet18": 0.94, "mnist": 0.99}  # mean test accuracy
DATASETS = {"fathom": "cifar10", "resnet18": "cifar10", "mnist": "mnist"}
VARIANTS: dict[str, dict[str, Any]] = {
    "fathom": {"recipe": "cifar10-speed"},
    "mnist": {"recipe": "mnist-speed"},
    # The usual CIFAR ResNet-18 recipe (flip + 4 px crop, SGD Nesterov, one-cycle, no TTA) with
    # the same speed plumbing, so the two differ by recipe only. Epochs: enough for ~94-95%.
    "resnet18": {
        "data": {
            "name": "cifar10",
            "batch_size": 512,
            "val_fraction": 0.0,
            "augment": {"flip": True, "crop": {"padding": 4}},
        },
        "model": {"name": "resnet18"},
        "optim": {
            "name": "sgd",
            "lr": 0.2,
            "momentum": 0.9,
            "nesterov": True,
            "weight_decay": 0.0005,
            "fused": True,
        },  # fmt: skip
        "schedule": {"name": "onecycle"},
        "train": {
            "epochs": 18,
            "precision": "bf16",
            "channels_last": True,
            "compile": True,
            "label_smoothing": 0.1,
        },  # fmt: skip
    },
}
# --smoke keeps every network's structure but shrinks it, so a CPU finishes in seconds.
SMOKE = {
    "fathom": ["model.widths=[16,32,32]"],
    "resnet18": ["model.width=0.125"],
    "mnist": ["model.channels=[8,16]"],
}


def variant_config(name: str, seed: int, device: str, args: argparse.Namespace) -> FathomConfig:
    overrides = [
        f"train.seed={seed}",
        f"train.device={device}",
        f"train.compile={str(args.compile).lower()}",
        "train.log_every_steps=1000000",  # no host sync but at epoch ends
        "run.progress=none",
        *(["train.epochs=1", *SMOKE[name]] if args.smoke else []),
        *args.set,
    ]
    # use_recipe=False: the plain variant must not inherit the cifar10 recipe's settings.
    return resolve_config(VARIANTS[name], overrides=overrides, use_recipe=False)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dummy_bundle(bundle: DataBundle, batch_size: int) -> DataBundle:
    """Random images in a full and a last partial batch of the real epoch's sizes."""
    count = batch_size + (len(bundle.train) % batch_size or batch_size)
    inputs = torch.randn(count, *bundle.info.input_shape)
    targets = torch.randint(0, int(bundle.info.num_classes or 2), (count,))
    return DataBundle(bundle.info, Split(inputs, targets))


def warm_up(config: FathomConfig, model: torch.nn.Module, bundle: DataBundle) -> float:
    """Compile every graph the timed runs use (train steps, evaluation) on random images."""
    started = time.perf_counter()
    dummy = dummy_bundle(bundle, config.data.batch_size)
    trainer = build_trainer(config, model, dummy, None)
    trainer.fit()
    test = bundle.test
    evaluation_batch = config.data.eval_batch_size or max(config.data.batch_size, 512)
    sizes = evaluation_batch + (len(test) % evaluation_batch or evaluation_batch)
    score(trainer, Split(torch.randn(sizes, *test.inputs.shape[1:]), test.targets[:sizes]), config)
    synchronize(trainer.device)
    return time.perf_counter() - started


def reset(model: torch.nn.Module, config: FathomConfig, info: Any) -> None:
    """Load a freshly initialised model of this seed into ``model`` (kept compiled)."""
    fresh = build_model(config, info)
    model.load_state_dict(fresh.state_dict())
    for parameter in model.parameters():
        parameter.requires_grad_(True)  # airbench freezes its whitening once it is set


def score(trainer: Any, test: Split, config: FathomConfig) -> dict[str, float]:
    batch = config.data.eval_batch_size or max(config.data.batch_size, 512)
    loader = make_loader(test, batch, device=trainer.device)
    return evaluate(trainer.network, trainer.task, loader, trainer.device, trainer.precision)[0]


def run_variant(
    name: str, bundle: DataBundle, device: torch.device, args: argparse.Namespace
) -> dict[str, Any]:
    first = variant_config(name, args.seeds[0], device.type, args)
    model = build_model(first, bundle.info)
    train_only = DataBundle(bundle.info, bundle.train, test=bundle.test)
    warm_seconds = warm_up(first, model, train_only) if args.compile else 0.0
    runs = []
    for seed in args.seeds:
        config = variant_config(name, seed, device.type, args)
        reset(model, config, bundle.info)
        trainer = build_trainer(config, model, train_only, None)
        meter = LoadMeter()
        synchronize(device)
        meter.start()
        started = time.perf_counter()
        trainer.fit()
        synchronize(device)
        seconds = time.perf_counter() - started
        load = meter.stop()
        metrics = score(trainer, bundle.test, config)
        runs.append({"seed": seed, "seconds": round(seconds, 3), "load": load, **metrics})
        print(f"  {name} seed {seed}: {metrics['accuracy']:.4f} in {seconds:.2f} s", flush=True)
    return {
        "config": first.to_dict(),
        "warm_up_seconds": round(warm_seconds, 1),
        "runs": runs,
        **summarise(runs, TARGETS[name]),
    }


def summarise(runs: list[dict[str, Any]], target: float) -> dict[str, Any]:
    accuracies = [run["accuracy"] for run in runs]
    seconds = [run["seconds"] for run in runs]

    def spread(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    return {
        "accuracy_mean": round(statistics.fmean(accuracies), 4),
        "accuracy_std": round(spread(accuracies), 4),
        "seconds_mean": round(statistics.fmean(seconds), 3),
        "seconds_std": round(spread(seconds), 3),
        "target_accuracy": target,
        "reaches_target": statistics.fmean(accuracies) >= target,
    }


def device_info(device: torch.device) -> dict[str, Any]:
    if device.type != "cuda":
        return {"device": "cpu"}
    properties = torch.cuda.get_device_properties(device)
    return {
        "device": "cuda",
        "gpu": properties.name,
        "gpu_memory_gib": round(properties.total_memory / 2**30, 1),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def load_dataset(name: str, smoke: bool) -> DataBundle:
    bundle = fathom.data.load(
        name,
        data_dir=DATA_DIR,
        val_fraction=0.0,
        limit=512 if smoke else None,
        download=False,
    )
    if smoke:
        bundle.test = Split(bundle.test.inputs[:256], bundle.test.targets[:256])
    return bundle


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", "--quick", action="store_true", help="512 images, 1 epoch")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, KEY=VALUE")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    add_common_arguments(parser, "cifar10_speed.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cuda = torch.cuda.is_available()
    wanted = ("cuda" if cuda else "cpu") if args.device == "auto" else args.device
    device = torch.device(wanted)
    if device.type == "cuda" and not cuda:
        print("--device cuda: no CUDA device here; use --smoke on the CPU", file=sys.stderr)
        return 2
    if device.type == "cpu" and not args.smoke:
        print("the GPU speed benchmark needs a CUDA GPU; on a CPU use --smoke", file=sys.stderr)
        return 2
    args.compile = device.type == "cuda" if args.compile is None else args.compile
    machine = start_run(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    bundles: dict[str, DataBundle] = {}
    results = {}
    for name in args.variants:
        print(f"{name}:", flush=True)
        dataset = DATASETS[name]
        if dataset not in bundles:
            bundles[dataset] = load_dataset(dataset, args.smoke)
        results[name] = run_variant(name, bundles[dataset], device, args)
    for name, result in results.items():
        print(
            f"{name:10s} accuracy {result['accuracy_mean']:.4f} ± {result['accuracy_std']:.4f}  "
            f"seconds {result['seconds_mean']:.2f} ± {result['seconds_std']:.2f}"
        )
    record = {
        "benchmark": "cifar10_speed",
        "smoke": args.smoke,
        "machine": {**machine, **device_info(device)},
        "seeds": args.seeds,
        "compile": args.compile,
        "examples": {
            name: {"train": len(bundle.train), "test": len(bundle.test)}
            for name, bundle in bundles.items()
        },
        "variants": results,
        "notes": "seconds: trainer.fit() only (compiled beforehand); accuracy: test set after "
        "training, with the recipe's test-time augmentation; JPEG-decoded CIFAR-10 copy",
    }
    write_record(args.output, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
