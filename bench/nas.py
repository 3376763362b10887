"""Architecture search: regularised evolution against random search with early stopping, side by
side on the same data, trial budget and latency budget; the winner of each re-trained with the
full epochs, and the cost of the whole search in units of one full training.

The issue's goal (the winner within 0.3 points of the best of 20 fully trained architectures, at
<= 3x one full training) needs those 20 full trainings as the reference; on a loaded 2-core
machine this runs a reduced version (digits or an MNIST subset, few trials) and records what
it reached, labelled as such.

    python bench/nas.py --quick                  # digits, 3 trials each (a minute or two)
    python bench/nas.py --limit 6000 --trials 8  # reduced MNIST
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import optuna  # noqa: E402

import common  # noqa: E402
import fathom  # noqa: E402


def run_strategy(args: argparse.Namespace, strategy: str, folder: Path) -> dict:
    if args.quick:
        dataset, overrides = "digits", ["data.limit=240", "train.epochs=1"]
    else:
        dataset = "mnist"
        overrides = [f"data.data_dir={common.DATA_DIR}", "data.download=false",
                     f"data.limit={args.limit}", "data.val_fraction=0.1", f"train.epochs={args.epochs}"]  # fmt: skip
    overrides.append("train.diagnostics=false")
    started = time.perf_counter()
    result = fathom.nas(dataset, trials=args.trials, strategy=strategy, population=max(2, args.trials // 3),
                        budget_latency_ms=args.budget_latency_ms, trial_epochs=1, overrides=overrides,
                        directory=folder, study=strategy, quiet=True, report=not args.quick)  # fmt: skip
    seconds = time.perf_counter() - started
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
        "cost_in_full_trainings": round(seconds / final["duration_seconds"], 2) if final.get("duration_seconds") else None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser, "nas.json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the winner's re-training")
    parser.add_argument("--limit", type=int, default=6000)
    parser.add_argument("--budget-latency-ms", type=float, default=2.0)
    args = parser.parse_args()
    if args.quick:
        args.trials = 3
    machine = common.start_run(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="fathom-bench-nas-"))
    record = {"machine": machine, "args": {k: str(v) for k, v in vars(args).items()}, "runs": []}
    try:
        for strategy in ("evolution", "random"):
            record["runs"].append(run_strategy(args, strategy, folder))
            print(record["runs"][-1], flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    common.write_record(args.output, record)


if __name__ == "__main__":
    main()
