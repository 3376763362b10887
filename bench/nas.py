"""Architecture search: regularised evolution against random search with early stopping, side by
side on the same data, trial budget and latency budget; the winner of each re-trained with the
full epochs, and the cost of the whole search in units of one full training.

The issue's goal (the winner within 0.3 points of the best of 20 fully trained architectures, at
<= 3x one full training) needs those 20 full trainings as the yardstick: ``--reference 20``
draws 20 architectures at random from the same family space, under the same latency budget,
and trains each with the winner's full settings (same data, epochs, recipe). "One full
training" is the median of those reference trainings, timed two ways: wall seconds around
``fathom.fit`` (setup, training, test scoring), against the search's wall seconds (trials, the
winner's re-training and its test scoring; no HTML reports on either side), and training seconds
(run.json's ``duration_seconds``), against the trials' and the re-training's.

    python bench/nas.py --quick                               # digits, 3 trials each
    python bench/nas.py --limit 12000 --epochs 6 --trials 10 --reference 20   # what ran here
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import optuna  # noqa: E402

import common  # noqa: E402
import fathom  # noqa: E402


def data_and_overrides(args: argparse.Namespace) -> tuple[str, list[str]]:
    if args.quick:
        return "digits", ["data.limit=240", "train.epochs=1", "train.diagnostics=false"]
    return "mnist", [f"data.data_dir={common.DATA_DIR}", "data.download=false",
                     f"data.limit={args.limit}", "data.val_fraction=0.1",
                     f"train.epochs={args.epochs}", "train.diagnostics=false"]  # fmt: skip


def reference(args: argparse.Namespace, folder: Path) -> dict:
    """``args.reference`` random architectures within the latency budget, each trained fully."""
    from fathom.api.tune import nas_spec
    from fathom.tuning.measure import latency_ms
    from fathom.tuning.nas import build_for_budget
    from fathom.tuning.trial import trial_config

    dataset, overrides = data_and_overrides(args)
    spec = nas_spec(dataset, "cnn", args.reference, "random", None, overrides, "reference",
                    folder, trial_epochs=None)  # fmt: skip
    spec.plan.base["train"]["epochs"] = spec.extra["final_epochs"]  # trained fully
    sampler = optuna.samplers.RandomSampler(seed=args.reference_seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    rows: list[dict] = []
    while len(rows) < args.reference:
        trial = study.ask()
        config = trial_config(spec.plan, spec.plan.space.suggest(trial), len(rows))
        config.run.dir = str(folder / "reference")
        latency = latency_ms(*build_for_budget(config))
        if latency > args.budget_latency_ms:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        started = time.perf_counter()
        run = fathom.fit(config=config, report=False)
        fit_seconds = time.perf_counter() - started  # as the search is timed: setup and test too
        record = fathom.runs.folder.read_run_json(run.path)
        accuracy = record["test"]["accuracy"]
        study.tell(trial, accuracy)
        rows.append({"model": config.model.model_dump(mode="json"), "latency_ms": round(latency, 3),
                     "test_accuracy": accuracy, "train_seconds": record["duration_seconds"],
                     "fit_seconds": round(fit_seconds, 3)})  # fmt: skip
        print(f"reference {len(rows)}/{args.reference}: {accuracy:.4f}", flush=True)
    accuracies = sorted(row["test_accuracy"] for row in rows)
    return {"architectures": rows, "best_test_accuracy": accuracies[-1],
            "median_test_accuracy": statistics.median(accuracies),
            "median_train_seconds": statistics.median(r["train_seconds"] for r in rows),
            "median_fit_seconds": statistics.median(r["fit_seconds"] for r in rows)}  # fmt: skip


def run_strategy(args: argparse.Namespace, strategy: str, folder: Path) -> dict:
    dataset, overrides = data_and_overrides(args)
    started = time.perf_counter()
    result = fathom.nas(dataset, trials=args.trials, strategy=strategy, population=max(2, args.trials // 3),
                        budget_latency_ms=args.budget_latency_ms, trial_epochs=1, trial_steps=args.trial_steps,
                        overrides=overrides,
                        directory=folder, study=strategy, quiet=True, report=False)  # fmt: skip
    seconds = time.perf_counter() - started  # no HTML reports, as the reference trainings
    trial_seconds = [fathom.runs.folder.read_run_json(path.parent).get("duration_seconds") or 0.0
                     for path in (folder / strategy / "trials").glob("*/run.json")]  # fmt: skip
    winner = result.record["extra"]["winner"]
    final = (
        fathom.runs.folder.read_run_json(Path(winner["winner run"]))
        if winner.get("winner run")
        else {}
    )
    states = [t["state"] for t in result.record["trial_list"]]
    return {
        "strategy": strategy, "trials": len(states),
        "states": {s: states.count(s) for s in set(states)}, "search_and_retrain_seconds": round(seconds, 1),
        "winner_search_value": winner.get("search value"), "winner_latency_ms": winner.get("latency_ms"),
        "winner_test_accuracy": (final.get("test") or {}).get("accuracy"),
        "winner_train_seconds": final.get("duration_seconds"), "winner_model": winner.get("model"),
        "trial_train_seconds": round(sum(trial_seconds), 1),
        "cost_in_full_trainings": round(seconds / final["duration_seconds"], 2) if final.get("duration_seconds") else None,
    }  # fmt: skip


def compare(record: dict) -> None:
    """Each winner against the best reference architecture, and its cost in full trainings."""
    one_training = record["reference"]["median_train_seconds"]
    best = record["reference"]["best_test_accuracy"]
    for run in record["runs"]:
        if run["winner_test_accuracy"] is None:
            continue
        run["points_below_best_reference"] = round(100 * (best - run["winner_test_accuracy"]), 2)
        # wall against wall (each full training timed around fathom.fit, as the search is), and
        # training seconds against training seconds (trials + re-training vs duration_seconds)
        run["cost_in_median_full_trainings"] = round(
            run["search_and_retrain_seconds"] / record["reference"]["median_fit_seconds"], 2
        )
        training = run["trial_train_seconds"] + (run["winner_train_seconds"] or 0.0)
        run["training_cost_in_median_full_trainings"] = round(training / one_training, 2)
        print(
            run["strategy"],
            run["points_below_best_reference"],
            "points below the best;",
            run["cost_in_median_full_trainings"],
            "full trainings",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser, "nas.json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the winner's re-training")
    parser.add_argument("--limit", type=int, default=6000)
    parser.add_argument("--budget-latency-ms", type=float, default=2.0)
    parser.add_argument(
        "--reference",
        type=int,
        default=0,
        help="random architectures trained fully as the yardstick (the issue: 20)",
    )
    parser.add_argument("--reference-seed", type=int, default=1)
    parser.add_argument("--trial-steps", type=int, help="cut each 1-epoch trial at N steps")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.reference = 3, min(args.reference, 2)
    machine = common.start_run(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="fathom-bench-nas-"))
    record = {"machine": machine, "args": {k: str(v) for k, v in vars(args).items()}, "runs": []}
    try:
        for strategy in ("evolution", "random"):
            record["runs"].append(run_strategy(args, strategy, folder))
            print(record["runs"][-1], flush=True)
        if args.reference:
            record["reference"] = reference(args, folder)
            compare(record)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    common.write_record(args.output, record)


if __name__ == "__main__":
    main()
