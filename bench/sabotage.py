"""The sabotage table: plant each fault of ``fathom.diagnosis.sabotage`` in a small digits run, ask
the doctor, and apply the automatic remedy where there is one.

For every fault and seed (the seed changes the data split and the batch order): was the planted
fault diagnosed, which other diagnoses came with it (false alarms), the test accuracy of the broken
run, and after the remedy. Healthy runs (an MLP and a CNN) must get no diagnosis at all.

    python bench/sabotage.py            # seeds 0, 1, 2
    python bench/sabotage.py --quick    # seed 0
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fathom  # noqa: E402
from common import add_common_arguments, load_average, start_run, write_record  # noqa: E402
from fathom.api.inspection import run_planted_fault  # noqa: E402
from fathom.diagnosis import sabotage  # noqa: E402


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
    args = parser.parse_args()
    machine = start_run(1)
    seeds = [0] if args.quick else args.seeds
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
        "settings": sabotage.BASE_OVERRIDES, "rows": rows, "load_average_end": load_average(),
    })  # fmt: skip


def _mean(values: list[float | None]) -> float | None:
    """Mean accuracy; a diverged run (None) counts as chance (0.1) so failures stay visible."""
    if not values:
        return None
    return round(statistics.mean(0.1 if value is None else value for value in values), 4)


if __name__ == "__main__":
    main()
