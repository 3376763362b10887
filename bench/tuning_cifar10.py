"""CIFAR-10: a 20-trial search on a 1-epoch proxy, then the best trial's values trained with the
full ``cifar10`` recipe (same epochs, batch and data: equal training time) beside the recipe.

The proxy trains one epoch on a subset with a 10% validation split (the recipe trains on all
50,000 images and has none) and scores validation accuracy; the search is Optuna's TPE over the
recipe's optimiser and schedule values. The issue's goal: the tuned recipe beats the recipe by
>= 0.5 points of test accuracy at equal training time, or the JSON says by how much it fails.

    python bench/tuning_cifar10.py --quick                     # a few CIFAR images, seconds
    python bench/tuning_cifar10.py --proxy-limit 30000         # what ran here (~40 min)
    python bench/tuning_cifar10.py --proxy-limit 30000 --no-baseline   # the recipe measured before
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import optuna  # noqa: E402

import common  # noqa: E402
import fathom  # noqa: E402
from tuning import cpu_seconds  # noqa: E402

SPACE = {  # around the recipe's airbench values: lr 0.75, momentum 0.85, wd 0.00133, ls 0.2
    "optim.lr": {"log_uniform": [0.3, 1.5]},
    "optim.momentum": {"uniform": [0.78, 0.92]},
    "optim.weight_decay": {"log_uniform": [6e-4, 3e-3]},
    "train.label_smoothing": {"uniform": [0.05, 0.3]},
    "schedule.peak_fraction": {"uniform": [0.1, 0.4]},
}
DATA = [f"data.data_dir={common.DATA_DIR}", "data.download=false", "train.diagnostics=false"]


def proxy_search(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    overrides = [*DATA, f"data.limit={args.proxy_limit}", "data.val_fraction=0.1",
                 f"train.epochs={args.proxy_epochs}", "task.tta=[]"]  # fmt: skip
    started, cpu_before = time.perf_counter(), cpu_seconds()
    result = fathom.tune("cifar10", SPACE, overrides=overrides, trials=args.trials, workers=1,
                         pruner="none", directory=folder, quiet=True, study="cifar10-proxy",
                         report=False)  # fmt: skip
    trials = result.record["trial_list"]
    return {
        "trials": len(trials), "seconds": round(time.perf_counter() - started, 1),
        "cpu_minutes": round((cpu_seconds() - cpu_before) / 60, 1),
        "best_val_accuracy": result.best["values"][0], "best_params": result.best["params"],
        "val_accuracies": sorted((t["values"] or [None])[0] or 0.0 for t in trials),
        "recipe_values": {key: value for key, value in recipe_values().items() if key in SPACE},
    }  # fmt: skip


def recipe_values() -> dict[str, Any]:
    config = fathom.assemble.resolve_config(dataset="cifar10").to_dict()
    return {key: config[key.split(".")[0]][key.split(".")[1]] for key in SPACE}


def full_training(
    args: argparse.Namespace, params: dict[str, Any], folder: Path, name: str
) -> dict:
    """The recipe (with ``params`` in place of its values), trained and scored on the test set."""
    overrides = [*DATA, f"train.seed={args.seed}", *(f"{k}={v}" for k, v in params.items())]
    if args.quick:
        overrides += ["data.limit=1024", "train.epochs=1"]
    run = fathom.fit(config=fathom.assemble.resolve_config(dataset="cifar10", overrides=overrides),
                     run_dir=str(folder / name), progress="none", report=False)  # fmt: skip
    record = fathom.runs.folder.read_run_json(run.path)
    print(name, record["test"]["accuracy"], flush=True)
    return {"params": params, "test_accuracy": record["test"]["accuracy"],
            "train_seconds": round(record["duration_seconds"], 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser, "tuning-cifar10.json")
    parser.add_argument("--quick", action="store_true", help="a few images, 2 trials")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--proxy-epochs", type=int, default=1)
    parser.add_argument("--proxy-limit", type=int, default=30000, help="training images of a trial")
    parser.add_argument("--seed", type=int, default=0, help="seed of the full trainings")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip re-training the recipe itself (cite an earlier measurement)")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.trials, args.proxy_limit = 2, 600
    machine = common.start_run(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="fathom-bench-tuning-cifar10-"))
    record: dict[str, Any] = {
        "machine": machine,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    try:
        record["proxy_search"] = proxy_search(args, folder)
        print(record["proxy_search"], flush=True)
        record["tuned"] = full_training(
            args, record["proxy_search"]["best_params"], folder, "tuned"
        )
        if not args.no_baseline:
            record["recipe"] = full_training(args, {}, folder, "recipe")
            gain = record["tuned"]["test_accuracy"] - record["recipe"]["test_accuracy"]
            record["gain_points"] = round(100 * gain, 2)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    record["load_average_after"] = common.load_average()
    common.write_record(args.output, record)


if __name__ == "__main__":
    main()
