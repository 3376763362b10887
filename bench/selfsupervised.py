"""Self-supervised pretraining, side by side in one process: MNIST (or a reduced CIFAR-10).

For each method (SimCLR, BYOL): pretrain without labels for a CPU time budget (the recipe
``DATASET-METHOD``), then
- the kNN accuracy of the backbone's features on the test set (bank: training examples);
- the linear probe: ``fathom finetune RUN DATA transfer.mode=features
  transfer.cache_features=true`` (frozen backbone, a linear head), test accuracy;
- 1% of the labels: SSL pretraining + fine-tuning on ``data.labels_per_class`` examples.
Beside them, with the same architecture: a linear probe (and kNN) of a randomly initialised
backbone, and supervised training from scratch on the same 1% of labels.

    python bench/selfsupervised.py                         # MNIST, 180 s of pretraining each
    python bench/selfsupervised.py --methods simclr --budget 60
    python bench/selfsupervised.py --dataset cifar10 --budget 600 --output bench/results/x.json
    python bench/selfsupervised.py --quick                 # toy sizes: checks that it runs
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fathom  # noqa: E402
from common import DATA_DIR, add_common_arguments, load_average, start_run, write_record  # noqa: E402

SEED = 0
PUBLISHED = {"simclr": 0.907, "byol": 0.926}  # CIFAR-10 linear probe, ResNet-18, 1000 epochs


def data_overrides(args: argparse.Namespace) -> list[str]:
    overrides = [f"data.data_dir={DATA_DIR}", "data.download=false", "train.diagnostics=false"]
    if args.quick:
        overrides += ["data.limit=1200"]
    return overrides


def settings(run_dir: Path, name: str) -> dict[str, Any]:
    return {"run_dir": run_dir, "name": name, "progress": "none", "seed": SEED, "report": False}


def pretrain(args: argparse.Namespace, method: str, folder: Path, **more: Any) -> fathom.Run:
    """A run of the recipe DATASET-METHOD for ``args.budget`` seconds (or a few steps, quick)."""
    overrides = [*data_overrides(args), f"train.max_seconds={args.budget}"]
    if args.steps:  # a step budget: the same work whatever the load (the CPU time is recorded)
        overrides += [f"train.max_steps={args.steps}", "train.max_seconds=100000"]
    if args.quick:
        overrides += ["train.max_steps=4", "task.knn_bank=200"]
        overrides += ["model.channels=[4]"] if args.dataset == "mnist" else []  # a ResNet-20
    overrides += more.pop("extra", [])
    config = {"recipe": f"{args.dataset}-{method}"}
    return fathom.fit(
        None, args.dataset, config=config, overrides=overrides, **settings(folder, more["name"])
    )


def linear_probe(args: argparse.Namespace, source: fathom.Run, folder: Path, name: str) -> float:
    overrides = [*data_overrides(args), "transfer.mode=features", "transfer.cache_features=true"]
    overrides += ["train.epochs=2"] if args.quick else [f"train.epochs={args.probe_epochs}"]
    overrides += [f"data.batch_size={args.probe_batch}"]  # a linear head: large batches
    if args.dataset == "cifar10":
        overrides += ["task.tta=[]"]  # the recipe's test-time views are of images, not features
    run = fathom.finetune(source.path, args.dataset, overrides=overrides, **settings(folder, name))
    return float(run.summary["test"]["accuracy"])


def few_labels(
    args: argparse.Namespace, folder: Path, name: str, source: fathom.Run | None, model: list[str]
) -> dict[str, Any]:
    """Test accuracy after training on ``args.labels_per_class`` labels per class: from
    ``source`` (fine-tuned, ``transfer.mode=full``) or from scratch with the ``model`` keys.
    With ``--few-lrs``, one run per rate, the same rates for both sides: ``accuracy`` is the
    best, ``by_lr`` each."""
    overrides = [*data_overrides(args), f"data.labels_per_class={args.labels_per_class}"]
    overrides += [f"train.epochs={2 if args.quick else args.few_epochs}"]
    if args.few_batch:
        overrides += [f"data.batch_size={args.few_batch}"]
    by_lr: dict[str, float] = {}
    for rate in args.few_lrs or [None]:
        keys = [*overrides, *([f"optim.lr={rate}"] if rate else [])]
        label = f"{name}-lr{rate}" if rate else name
        if source is None:
            run = fathom.fit(
                None, args.dataset, overrides=[*keys, *model], **settings(folder, label)
            )
        else:
            keys += ["transfer.mode=full"]
            run = fathom.finetune(
                source.path, args.dataset, overrides=keys, **settings(folder, label)
            )
        by_lr[str(rate or "recipe")] = float(run.summary["test"]["accuracy"])
    return {"accuracy": max(by_lr.values()), "by_lr": by_lr}


def pretraining_facts(run: fathom.Run) -> dict[str, Any]:
    validation = [line for line in run.metrics if line["kind"] == "val"]
    summary = run.summary
    return {
        "steps": summary["steps"],
        "pretrain_seconds": round(summary["duration_seconds"], 1),
        "epochs": round(validation[-1]["epoch"], 2) if validation else None,
        "knn_accuracy_val_curve": [round(line.get("knn_accuracy", 0.0), 4) for line in validation],
        "knn_accuracy_test": summary["test"].get("knn_accuracy"),
        "stop": summary.get("message"),
    }


def run_method(args: argparse.Namespace, method: str, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    load_before = load_average()
    cpu_started = time.process_time()
    source = pretrain(args, method, folder, name=method)
    result = pretraining_facts(source)
    result["pretrain_cpu_seconds"] = round(time.process_time() - cpu_started, 1)  # all threads
    result["linear_probe_accuracy"] = linear_probe(args, source, folder, f"{method}-probe")
    print(f"{method}: {result}", flush=True)
    if not args.no_few_labels:
        few = few_labels(args, folder, f"{method}-1pct", source, [])
        result["few_labels_finetune_accuracy"] = few["accuracy"]
        result["few_labels_finetune_by_lr"] = few["by_lr"]
    if args.dataset == "cifar10":
        result["fraction_of_published_linear"] = round(
            result["linear_probe_accuracy"] / PUBLISHED[method], 3
        )
    result["load_before"], result["load_after"] = load_before, load_average()
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(f"{method}: {result}", flush=True)
    return result


def run_baselines(args: argparse.Namespace, folder: Path, model: list[str]) -> dict[str, Any]:
    """The same architecture without pretraining: its random backbone's probe and kNN (the
    weights stay as initialised: a learning rate of 1e-30 changes no float32 weight, while 20
    training steps set the batch-norm statistics), and supervised training on 1% of labels."""
    started = time.perf_counter()
    steps = 4 if args.quick else 20
    random_run = pretrain(
        args, args.methods[0], folder, name="random",
        extra=["optim.lr=1e-30", f"train.max_steps={steps}", "train.max_seconds=100000"],
    )  # fmt: skip
    supervised = few_labels(args, folder, "supervised-1pct", None, model)
    result = {
        "random_knn_accuracy_test": random_run.summary["test"].get("knn_accuracy"),
        "random_linear_probe_accuracy": linear_probe(args, random_run, folder, "random-probe"),
        "supervised_few_labels_accuracy": supervised["accuracy"],
        "supervised_few_labels_by_lr": supervised["by_lr"],
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    print(f"baselines: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "selfsupervised.json")
    parser.add_argument("--quick", action="store_true", help="toy sizes: checks that it runs")
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "cifar10"])
    parser.add_argument("--methods", nargs="+", default=["simclr", "byol"])
    parser.add_argument("--budget", type=float, default=180.0, help="pretraining seconds each")
    parser.add_argument("--steps", type=int, help="pretrain for this many steps instead")
    parser.add_argument("--no-baselines", action="store_true", help="the SSL methods only")
    parser.add_argument("--no-few-labels", action="store_true", help="kNN and linear probe only")
    parser.add_argument("--probe-epochs", type=int, default=5)
    parser.add_argument("--probe-batch", type=int, default=1024)
    parser.add_argument("--labels-per-class", type=int, help="default 1%%: 60 (MNIST), 50 (CIFAR)")
    parser.add_argument("--few-epochs", type=int, default=30)
    parser.add_argument("--few-batch", type=int, help="few-label batch (default: the recipe's)")
    parser.add_argument("--few-lrs", type=float, nargs="+", help="few-label rates, both sides")
    parser.add_argument("--seed", type=int, default=0, help="split, label subset and training")
    args = parser.parse_args()
    global SEED
    SEED = args.seed
    if args.labels_per_class is None:  # 1% of the training labels
        args.labels_per_class = 50 if args.dataset == "cifar10" else 60
    if args.dataset == "cifar10" and not args.quick:
        # 500 labels at the recipe's batch of 512 are one step an epoch (30 steps: 12% from
        # scratch); batch 64 gives 240 steps: 43.6% at rate 0.1, 45.6% at 0.2 (from scratch).
        args.few_batch = args.few_batch or 64
        args.few_lrs = args.few_lrs or [0.02, 0.2]
    machine = start_run(args.threads)
    architecture = ["model.channels=[16,32]", "model.hidden=0"]  # the SSL recipes' CNN
    if args.quick:
        architecture = ["model.channels=[4]", "model.hidden=0"]
    if args.dataset == "cifar10":
        architecture = ["model.name=resnet20"]  # the cifar10 recipe's training, the SSL network
    record: dict[str, Any] = {
        "machine": machine, "seed": SEED, "quick": args.quick, "dataset": args.dataset,
        "budget_seconds": None if args.steps else args.budget, "budget_steps": args.steps,
        "labels_per_class": args.labels_per_class,
        "probe_epochs": args.probe_epochs, "probe_batch": args.probe_batch, "few_label_epochs": args.few_epochs,
        "few_label_batch": args.few_batch, "few_label_lrs": args.few_lrs, "results": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for method in args.methods:
            record["results"][method] = run_method(args, method, Path(folder))
        if not args.no_baselines:
            record["results"]["baselines"] = run_baselines(args, Path(folder), architecture)
    write_record(args.output, record)


if __name__ == "__main__":
    main()
