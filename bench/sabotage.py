"""The sabotage table: plant each fault of ``fathom.diagnosis.sabotage`` in a small digits run, ask
the doctor, and apply the automatic remedy where there is one.

For every fault and seed (the seed changes the data split and the batch order): was the planted
fault diagnosed, which other diagnoses came with it (false alarms), the test accuracy of the broken
run, and after the remedy. Healthy runs (an MLP and a CNN) must get no diagnosis at all.

The second table plants faults the CLI way (``fathom.diagnosis.sabotage.CLI_FAULTS`` and the
larger ``CLI_BENCH_FAULTS``: an image folder, ResNet-8 on MNIST, the Adult CSV, an LSTM on text, a
GAN, the char-LM, each beside a healthy run of the same setup; and ``HEALTHY_RECIPES``, every
recipe shortened), reads the doctor's verdict from the run folder, and reruns with the overrides
the doctor printed; "remedy_recovered" compares the rerun with the healthy row's test score.

    python bench/sabotage.py            # seeds 0, 1, 2, then the CLI table
    python bench/sabotage.py --quick    # seed 0, the CLI table's small faults only
    python bench/sabotage.py --cli-only   # ~30 min on 2 cores, 1 thread a run
    python bench/sabotage.py --quick --only lr_too_high cnn_lr_low   # some rows of either table
    python bench/sabotage.py --cli-only --cli-seeds 0 1 2 --only cnn_healthy cnn_lr_low
        # rows (with their healthy references) as means over seeds
    python bench/sabotage.py --cli-only --cli-seeds 0 1 2 --only texts_noisy_labels \
        --extra train.label_smoothing=0.1   # rows with overrides of your own (a candidate remedy)
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fathom  # noqa: E402
from common import (  # noqa: E402
    DATA_DIR,
    add_common_arguments,
    load_average,
    start_run,
    write_record,
)
from fathom.api.inspection import run_planted_fault  # noqa: E402
from fathom.cli.options import table_dataset  # noqa: E402
from fathom.data.text import SENTIMENT_SOURCES, read_sentiment  # noqa: E402
from fathom.diagnosis import sabotage  # noqa: E402
from fathom.diagnosis.doctor import read_diagnosis  # noqa: E402
from fathom.errors import FathomError, TrainingDiverged  # noqa: E402


def run_setup(setup: sabotage.Setup, seed: int) -> tuple[list[str], float | None]:
    return run_planted_fault(setup, [f"train.seed={seed}"])


def healthy_cnn(bundle) -> sabotage.Setup:
    torch.manual_seed(0)
    model = fathom.models.create(
        "cnn", num_classes=10, in_channels=1, image_size=8, channels=[16, 32], hidden=64
    )
    return sabotage.Setup(model, bundle, [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, "sabotage.json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cli-only", action="store_true")
    parser.add_argument("--only", nargs="+", help="rows to run (fault names), e.g. to retry some")
    parser.add_argument(
        "--cli-seeds",
        type=int,
        nargs="+",
        help="seeds for the CLI table (means per row); default: the configs' own",
    )
    parser.add_argument(
        "--extra", nargs="+", default=[], help="overrides added to every CLI run (and its rerun)"
    )
    args = parser.parse_args()
    machine = start_run(1)
    seeds = [0] if args.quick else args.seeds
    faults = sabotage.CLI_FAULTS + ([] if args.quick else sabotage.CLI_BENCH_FAULTS)
    faults += [] if args.quick else sabotage.HEALTHY_RECIPES
    faults = [fault for fault in faults if not args.only or fault.name in args.only]
    with tempfile.TemporaryDirectory() as tables:
        write_tables(Path(tables))
        cli_rows = cli_table(faults, tables, args.cli_seeds, args.extra)
    if args.cli_only:
        default = args.output.name == "sabotage.json"
        write_record(args.output.with_name("sabotage_cli.json") if default else args.output, {
            "benchmark": "sabotage_cli", "machine": machine, "cli_seeds": args.cli_seeds,
            "extra_overrides": args.extra,
            "rows": cli_rows,
            "load_average_end": load_average(),
        })  # fmt: skip
        return
    cases = [*((f.name, f.description, f.expected, f.build, f.remedy) for f in sabotage.FAULTS),
             ("healthy_cnn", "small CNN, AdamW lr 2e-3", None, healthy_cnn, None)]  # fmt: skip
    cases = [case for case in cases if not args.only or case[0] in args.only]
    rows = []
    for name, description, expected, build, remedy in cases:
        found, alarms, before, after, seconds = 0, set(), [], [], []
        for seed in seeds:
            bundle = fathom.data.load("digits", seed=seed)
            started = time.perf_counter()
            keys, accuracy = run_setup(build(bundle), seed)
            seconds.append(time.perf_counter() - started)
            found += expected in keys if expected else not keys
            alarms |= {key for key in keys if key != expected}
            before.append(accuracy)
            if remedy is not None:
                repaired_keys, repaired = run_setup(remedy(build(bundle)), seed)
                after.append(repaired)
        row = {
            "fault": name, "planted": description, "expected": expected,
            "found": f"{found}/{len(seeds)}", "false_alarms": sorted(alarms),
            "accuracy_before": _mean(before), "accuracy_after_remedy": _mean(after) if after else None,
            "seconds_per_run": statistics.median(seconds),
        }  # fmt: skip
        rows.append(row)
        print(f"{name:24s} found {row['found']}  alarms {row['false_alarms']}  "
              f"acc {row['accuracy_before']}  -> {row['accuracy_after_remedy']}", flush=True)  # fmt: skip
    write_record(args.output, {
        "benchmark": "sabotage", "machine": machine, "seeds": seeds, "data": "digits (sklearn 8x8)",
        "settings": sabotage.BASE_OVERRIDES, "rows": rows, "cli_rows": cli_rows,
        "load_average_end": load_average(),
    })  # fmt: skip


def write_tables(folder: Path) -> None:
    """The CSVs the CLI rows train on: Adult with a header, Adult with every row twice and a
    unique ``id`` column (copies across the splits that exact-row matching misses), Adult with 25%
    of the incomes flipped, a seasonal series, and the sentiment TSVs (``write_texts``)."""
    lines = [line for line in (DATA_DIR / "tabular/adult/adult.data").read_text().splitlines()
             if line.strip()]  # fmt: skip
    header = ("age,workclass,fnlwgt,education,education_num,marital_status,occupation,"
              "relationship,race,sex,capital_gain,capital_loss,hours_per_week,native_country,"
              "income")  # fmt: skip
    rows = [",".join(field.strip() for field in line.split(",")) for line in lines]
    (folder / "adult.csv").write_text("\n".join([header, *rows]) + "\n")
    doubled = [f"{index},{row}" for index, row in enumerate(rows + rows)]
    (folder / "adult_ids.csv").write_text("\n".join([f"id,{header}", *doubled]) + "\n")
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(600, generator=generator)
    values = [10 + 0.01 * t + 3 * math.sin(2 * math.pi * t / 12) + 0.3 * float(noise[t])
              for t in range(600)]  # fmt: skip
    (folder / "series.csv").write_text("value\n" + "\n".join(f"{v:.4f}" for v in values) + "\n")
    flips = (torch.rand(len(rows), generator=generator) < 0.25).tolist()  # label noise
    other = {">50K": "<=50K", "<=50K": ">50K"}
    noisy = []
    for row, flip in zip(rows, flips, strict=True):
        features, income = row.rsplit(",", 1)
        noisy.append(f"{features},{other[income] if flip else income}")
    (folder / "adult_noisy.csv").write_text("\n".join([header, *noisy]) + "\n")
    write_texts(folder, generator)


def write_texts(folder: Path, generator: torch.Generator) -> None:
    """The UCI sentiment sentences as a user's TSV (text, label), and a copy with 25% of the
    labels flipped."""
    texts, labels = read_sentiment(DATA_DIR, list(SENTIMENT_SOURCES))
    sentences = [
        (text.replace("\t", " "), label == 1) for text, label in zip(texts, labels, strict=True)
    ]
    flip = (torch.rand(len(sentences), generator=generator) < 0.25).tolist()
    for file, flips in (("sentiment.tsv", [False] * len(sentences)), ("sentiment_noisy.tsv", flip)):
        lines = [f"{text}\t{'positive' if positive != flipped else 'negative'}"
                 for (text, positive), flipped in zip(sentences, flips, strict=True)]  # fmt: skip
        (folder / file).write_text("\n".join(["text\tlabel", *lines]) + "\n")


def _placeholders(text: str, tables: str) -> str:
    return text.replace("DATA", str(DATA_DIR)).replace("TABLES", tables)


def train_cli(
    fault: sabotage.CliFault, extra: list[str], tables: str
) -> tuple[list[str], list[str], Any]:
    """(diagnosis keys, overrides printed for the expected one, the test scores or {})."""
    target = _placeholders(fault.target, tables) if fault.target else None
    with tempfile.TemporaryDirectory() as folder:
        settings = [*(_placeholders(item, tables) for item in fault.overrides), *extra,
                    *sabotage.CLI_COMMON, f"run.dir={folder}", f"data.data_dir={DATA_DIR}",
                    "run.report=false"]  # a temporary folder: no report.html  # fmt: skip
        if target and (Path(target).is_dir() or target.endswith((".csv", ".tsv"))):  # as the CLI
            kind = "folder" if Path(target).is_dir() else table_dataset(target, settings)["name"]
            settings = [*settings, f"data.name={kind}", f"data.path={target}"]
            target = None
        try:
            run = fathom.fit(fault.model, target, overrides=settings)
            path, test = run.path, run.summary.get("test") or {}
        except TrainingDiverged:
            path, test = max(Path(folder).iterdir(), key=lambda p: p.stat().st_mtime), {}
        diagnoses = list(read_diagnosis(path) or [])
    remedy = next((d.overrides for d in diagnoses if d.key == fault.expected), [])
    return [d.key for d in diagnoses], remedy, test


HIGHER_IS_BETTER = ("accuracy", "exact_match", "knn_accuracy")


def _score(test: dict[str, Any]) -> tuple[str, float] | tuple[None, None]:
    """The run's headline test score: accuracy where there is one, else exact match, MASE, loss."""
    for name in ("accuracy", "exact_match", "knn_accuracy", "mase", "loss"):
        if isinstance(test.get(name), (int, float)):
            return name, round(float(test[name]), 4)
    return None, None


def cli_table(
    faults: list[sabotage.CliFault],
    tables: str,
    seeds: list[int] | None = None,
    extra: list[str] | None = None,
) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for fault in sorted(faults, key=lambda fault: fault.expected is not None):  # healthy first
        reference = rows.get(fault.reference or "", {})
        rows[fault.name] = cli_row(fault, tables, reference, seeds, extra or [])
    return [rows[fault.name] for fault in faults]


def cli_row(
    fault: sabotage.CliFault,
    tables: str,
    healthy: dict[str, Any],
    seeds: list[int] | None = None,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """One CLI row; ``healthy``: the row of the healthy run the repaired one must come within
    5 points of (an accuracy-like score, higher is better). With ``seeds``, every seed's run
    (and its own printed remedy's rerun) is made and the row holds their means: one 2-epoch run
    moves by a point or two from seed to seed, as much as the 5-point bar's margin."""
    started = time.perf_counter()
    runs = [cli_runs(fault, tables, seed, extra or []) for seed in (seeds or [None])]
    keys = [key for run in runs for key in run["keys"]]
    metric = runs[0]["metric"]
    row = {"fault": fault.name, "planted": fault.description, "expected": fault.expected,
           "found": all(fault.expected in run["keys"] if fault.expected else not run["keys"]
                        for run in runs),
           "false_alarms": sorted({key for key in keys if key != fault.expected}),
           "metric": metric, "score": _mean_score([run["score"] for run in runs]),
           "remedy": runs[0]["remedy"]}  # fmt: skip
    if seeds:
        row["seeds"] = {str(seed): run for seed, run in zip(seeds, runs, strict=True)}
    repaired = [run for run in runs if "score_after" in run]
    if repaired:
        after_keys = sorted({key for run in repaired for key in run["after_keys"]})
        after = _mean_score([run["score_after"] for run in repaired])
        reference = healthy.get("score")
        row.update(remedy_removed_fault=fault.expected not in after_keys, score_after=after,
                   healthy_score=reference, after_keys=after_keys)  # fmt: skip
        if reference is not None and healthy.get("metric") in HIGHER_IS_BETTER:
            same = all(run["metric_after"] == healthy["metric"] for run in repaired)
            recovered = same and after is not None and after > reference - 0.05
            row["remedy_recovered"] = recovered and row["remedy_removed_fault"]
    row["seconds"] = round(time.perf_counter() - started, 1)
    print(f"{fault.name:28s} found {row['found']}  alarms {row['false_alarms']}  {metric} "
          f"{row['score']}  remedy {row['remedy']} -> {row.get('score_after')} "
          f"(healthy {healthy.get('score')})  {row['seconds']} s", flush=True)  # fmt: skip
    return row


def cli_runs(
    fault: sabotage.CliFault, tables: str, seed: int | None, extra: list[str]
) -> dict[str, Any]:
    """One seed of a CLI row: the planted run's verdict and score, then the rerun with the
    remedy the doctor printed for it (where the fault is repairable)."""
    seeded = [*extra, *([] if seed is None else [f"train.seed={seed}"])]
    keys, remedy, test = train_cli(fault, seeded, tables)
    metric, score = _score(test)
    run: dict[str, Any] = {"keys": keys, "metric": metric, "score": score, "remedy": remedy}
    if remedy and fault.repairable:
        try:
            after_keys, _, after_test = train_cli(fault, [*seeded, *remedy], tables)
        except FathomError as error:  # a remedy the config refuses is a failed remedy
            after_keys, after_test = [f"refused: {error}"], {}
        run["metric_after"], run["score_after"] = _score(after_test)
        run["after_keys"] = after_keys
    return run


def _mean_score(values: list[float | None]) -> float | None:
    """The mean of the seeds' scores; None when any run had none (diverged)."""
    if not values or any(value is None for value in values):
        return None
    return round(statistics.mean(values), 4)


def _mean(values: list[float | None]) -> float | None:
    """Mean accuracy; a diverged run (None) counts as chance (0.1) so failures stay visible."""
    if not values:
        return None
    return round(statistics.mean(0.1 if value is None else value for value in values), 4)


if __name__ == "__main__":
    main()
