"""Temperature scaling on the CIFAR-10 recipe: ECE, MCE, NLL and Brier on the test split before
and after a temperature fitted on a validation split (the recipe trains on all 50,000 images,
so this bench carves ``--val-fraction`` of them for the fit). Goal: ECE at least halved.

    python bench/calibration.py                                  # the recipe (hours on a CPU)
    python bench/calibration.py --limit 2500 --epochs 2          # reduced, for a loaded CPU
    python bench/calibration.py --quick                          # a smoke test (digits)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fathom  # noqa: E402
from common import DATA_DIR, LoadMeter, add_common_arguments, start_run, write_record  # noqa: E402
from fathom.trust.temperature import calibrate_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, "calibration.json")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    parser.add_argument("--limit", type=int, help="training images (default all)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=Path("/tmp/fathom-bench-calibration"))
    parser.add_argument("--quick", action="store_true", help="digits, 1 epoch")
    parser.add_argument("--run", type=Path, help="calibrate this finished run instead of training")
    args = parser.parse_args()
    if args.quick:
        args.dataset, args.epochs = "digits", 1
        if args.output == parser.get_default("output"):  # keep the real results
            args.output = args.output.with_name("calibration-quick.json")
    machine = start_run(args.threads)
    overrides = [f"data.val_fraction={args.val_fraction}", f"train.seed={args.seed}",
                 f"train.threads={args.threads}", f"run.dir={args.run_dir}", "run.progress=none",
                 f"data.data_dir={DATA_DIR}"]  # fmt: skip
    overrides += [f"train.epochs={args.epochs}"] if args.epochs else []
    overrides += [f"data.limit={args.limit}"] if args.limit else []
    overrides += ["run.report=false"] if args.quick else []
    meter, started = LoadMeter(), time.perf_counter()
    meter.start()
    if args.run is None:
        run_path = fathom.fit(None, args.dataset, overrides=overrides).path
        train_seconds = time.perf_counter() - started
    else:  # trained earlier (e.g. by this bench): its own record of the training time
        run_path = args.run
        train_seconds = fathom.load(run_path).summary.get("duration_seconds", 0.0)
    run = fathom.load(run_path)
    result = calibrate_run(run.path)
    test = result["test"]
    summary = {stage: {k: test[stage][k] for k in ("ece", "mce", "nll", "brier", "accuracy")}
               for stage in ("before", "after")}  # fmt: skip
    print(
        f"T = {result['temperature']:.3f}; test ECE {summary['before']['ece']:.4f} -> "
        f"{summary['after']['ece']:.4f}, NLL {summary['before']['nll']:.4f} -> {summary['after']['nll']:.4f}"
    )
    write_record(args.output, {
        "machine": machine, "dataset": args.dataset, "seed": args.seed, "epochs": args.epochs,
        "training_images": args.limit, "val_fraction": args.val_fraction, "run": run.path.name,
        "test_accuracy_of_the_run": run.summary.get("test", {}).get("accuracy"),
        "train_wall_seconds": round(train_seconds, 1), "load_share": meter.stop(),
        "temperature": result["temperature"], "test": summary,
        "ece_ratio_after_before": summary["after"]["ece"] / max(summary["before"]["ece"], 1e-12),
        "note": "logits without the recipe's TTA (calibration measures the network itself)",
    })  # fmt: skip


if __name__ == "__main__":
    main()
