"""Forecasting on real series: the neural model against naive, seasonal naive and ARIMA.

Each run trains a dataset's recipe (``fathom.fit("sunspots")``) and, in that same run, scores the
baselines on the same test windows (RUN/forecast.json). The goal: the neural model beats seasonal
naive on MASE on at least two real series, with ARIMA's figure beside it. Mean ± std over seeds.

    python bench/forecast.py                 # sunspots, co2, elnino; seeds 0 1 2
    python bench/forecast.py --quick         # one seed, two epochs, sunspots only (smoke test)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import json  # noqa: E402

import fathom  # noqa: E402
from common import add_common_arguments, start_run, write_record  # noqa: E402

SERIES = ("sunspots", "co2", "elnino")
SEASONAL = "seasonal naive"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="+", default=list(SERIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="one seed, 2 epochs, sunspots")
    add_common_arguments(parser, "forecast.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.series, args.seeds = ["sunspots"], args.seeds[:1]
    return args


def run_one(series: str, seed: int, folder: Path, quick: bool) -> dict[str, Any]:
    """One Fathom run of the series' recipe: test errors of the model and of every baseline."""
    overrides = [f"run.dir={folder}", "run.progress=none", f"train.seed={seed}"]
    if quick:
        overrides.append("train.epochs=2")
    started = time.perf_counter()
    run = fathom.fit(data=series, overrides=overrides)
    seconds = time.perf_counter() - started
    record = json.loads((run.path / "forecast.json").read_text())
    errors = {method.split(" (")[0]: values for method, values in record["errors"].items()}
    print(f"{series} seed {seed}: " + "  ".join(
        f"{method} {values['mase']:.3f}" for method, values in errors.items()
    ) + f"  ({seconds:.1f}s)", flush=True)  # fmt: skip
    return {"seed": seed, "seconds": round(seconds, 2), "errors": errors,
            "windows": record["windows"], "horizon": record["horizon"], "season": record["season"],
            "arima": record["arima"], "model": run.config.model.model_dump()}  # fmt: skip


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std of MASE, MAE and RMSE per method, and whether the model beat seasonal naive."""
    methods = runs[0]["errors"].keys()
    summary: dict[str, Any] = {}
    for method in methods:
        row = {}
        for metric in ("mase", "mae", "rmse"):
            values = [run["errors"][method][metric] for run in runs if method in run["errors"]]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            row[metric] = {"mean": round(statistics.mean(values), 4), "std": round(spread, 4)}
        summary[method] = row
    model = [run["errors"]["neural model"]["mase"] for run in runs]
    seasonal = [run["errors"][SEASONAL]["mase"] for run in runs]
    summary["model_beats_seasonal_naive"] = {
        "on_mean": statistics.mean(model) < statistics.mean(seasonal),
        "seeds_won": sum(m < s for m, s in zip(model, seasonal, strict=True)),
        "seeds": len(runs),
    }
    return summary


def mase_cell(summary: dict[str, Any], method: str) -> str:
    if method not in summary:
        return "-"
    value = summary[method]["mase"]
    return f"{value['mean']:.3f} ± {value['std']:.3f}" if value["std"] else f"{value['mean']:.3f}"


def print_table(summaries: dict[str, dict[str, Any]]) -> None:
    methods = ("neural model", SEASONAL, "naive", "ARIMA")
    print(f"\n{'series':<10}" + "".join(f"{method:>17}" for method in methods) + "  (test MASE)")
    for series, summary in summaries.items():
        print(f"{series:<10}" + "".join(f"{mase_cell(summary, m):>17}" for m in methods))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = start_run(args.threads)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for series in args.series:
            runs = [run_one(series, seed, Path(folder), args.quick) for seed in args.seeds]
            results[series] = {"summary": summarise(runs), "runs": runs}
    summaries = {series: result["summary"] for series, result in results.items()}
    print_table(summaries)
    wins = [
        s for s, summary in summaries.items() if summary["model_beats_seasonal_naive"]["on_mean"]
    ]
    print(f"neural model beats seasonal naive on mean test MASE on {len(wins)} series: {wins}")
    record = {
        "benchmark": "forecast", "machine": machine, "threads": args.threads, "quick": args.quick,
        "seeds": args.seeds, "goal": "neural MASE < seasonal-naive MASE on at least two real series",
        "series_won": wins, "goal_met": len(wins) >= 2, "results": results,
        "notes": ["MASE: test MAE / in-sample seasonal-naive MAE of the training part; every method "
                  "is scored on the same test windows in the same run; ARIMA is statsmodels SARIMAX "
                  "with a fixed order, fitted on the training part and filtered forward."],
    }  # fmt: skip
    write_record(args.output, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
