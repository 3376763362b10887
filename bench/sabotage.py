"""The sabotage table: plant each fault of ``fathom.diagnosis.sabotage`` in a small digits run, ask
the doctor, and apply the automatic remedy where there is one.

For every fault and seed (the seed changes the data split and the batch order): was the planted
fault diagnosed, which other diagnoses came with it (false alarms), the test accuracy of the broken
run, and after the remedy. Healthy runs (an MLP and a CNN) must get no diagnosis at all.

The second table plants faults the CLI way (``fathom.diagnosis.sabotage.CLI_FAULTS`` and the
larger ``CLI_BENCH_FAULTS``: an image folder, an LSTM on text, a GAN, the char-LM), reads the
doctor's verdict from the run folder, and reruns with the overrides the doctor printed.

    python bench/sabotage.py            # seeds 0, 1, 2, then the CLI table
    python bench/sabotage.py --quick    # seed 0, the CLI table's small faults only
    python bench/sabotage.py --cli-only
"""

from __future__ import annotations

import argparse
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
from fathom.diagnosis import sabotage  # noqa: E402
from fathom.diagnosis.doctor import read_diagnosis  # noqa: E402
from fathom.errors import TrainingDiverged  # noqa: E402


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
    args = parser.parse_args()
    machine = start_run(1)
    seeds = [0] if args.quick else args.seeds
    faults = sabotage.CLI_FAULTS + ([] if args.quick else sabotage.CLI_BENCH_FAULTS)
    cli_rows = [cli_row(fault) for fault in faults]
    if args.cli_only:
        write_record(args.output.with_name("sabotage_cli.json"), {
            "benchmark": "sabotage_cli", "machine": machine, "rows": cli_rows,
            "load_average_end": load_average(),
        })  # fmt: skip
        return
    cases = [*((f.name, f.description, f.expected, f.build, f.remedy) for f in sabotage.FAULTS),
             ("healthy_cnn", "small CNN, AdamW lr 2e-3", None, healthy_cnn, None)]  # fmt: skip
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


def train_cli(fault: sabotage.CliFault, extra: list[str]) -> tuple[list[str], list[str], Any]:
    """(diagnosis keys, overrides printed for the expected one, test accuracy or None)."""
    target = fault.target.replace("DATA", str(DATA_DIR)) if fault.target else None
    with tempfile.TemporaryDirectory() as folder:
        settings = [*fault.overrides, *extra, *sabotage.CLI_COMMON, f"run.dir={folder}",
                    f"data.data_dir={DATA_DIR}"]  # fmt: skip
        if target and Path(target).is_dir():
            settings = [*settings, "data.name=folder", f"data.path={target}"]
            target = None
        try:
            run = fathom.fit(fault.model, target, overrides=settings)
            path, test = run.path, run.summary.get("test") or {}
        except TrainingDiverged:
            path, test = max(Path(folder).iterdir(), key=lambda p: p.stat().st_mtime), {}
        diagnoses = list(read_diagnosis(path) or [])
    remedy = next((d.overrides for d in diagnoses if d.key == fault.expected), [])
    return [d.key for d in diagnoses], remedy, test.get("accuracy")


def cli_row(fault: sabotage.CliFault) -> dict[str, Any]:
    started = time.perf_counter()
    keys, remedy, accuracy = train_cli(fault, [])
    row = {"fault": fault.name, "planted": fault.description, "expected": fault.expected,
           "found": fault.expected in keys if fault.expected else not keys,
           "false_alarms": [key for key in keys if key != fault.expected],
           "accuracy": accuracy, "remedy": remedy}  # fmt: skip
    if remedy:
        after_keys, _, after = train_cli(fault, remedy)
        row.update(remedy_removed_fault=fault.expected not in after_keys, accuracy_after=after)
    row["seconds"] = round(time.perf_counter() - started, 1)
    print(f"{fault.name:28s} found {row['found']}  alarms {row['false_alarms']}  acc {accuracy}"
          f"  remedy {remedy} -> {row.get('accuracy_after')}", flush=True)  # fmt: skip
    return row


def _mean(values: list[float | None]) -> float | None:
    """Mean accuracy; a diverged run (None) counts as chance (0.1) so failures stay visible."""
    if not values:
        return None
    return round(statistics.mean(0.1 if value is None else value for value in values), 4)


if __name__ == "__main__":
    main()
