"""``fathom card RUN``: the report card (calibration, robustness, fairness, size, the doctor)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument("--limit", type=int, default=500, help="test examples attacked/corrupted")
    parser.add_argument(
        "--curve-points", type=int, default=5, help="ε values of the curve (0: none)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-robustness", action="store_true", help="skip attacks and corruptions")
    parser.add_argument("--report", action="store_true", help="also add it to RUN/report.html")


def run(args: argparse.Namespace) -> int:
    from fathom.api.trust import card

    made = card(args.run, limit=args.limit, curve_points=args.curve_points, seed=args.seed,
                robustness=not args.no_robustness, report=args.report)  # fmt: skip
    accuracy = (made["accuracy"].get("metrics") or {}).get("accuracy")
    calibration = made["calibration"]
    print(f"accuracy {accuracy:.4f}, ECE {calibration['before']['ece']:.4f}"
          + (f" -> {calibration['after']['ece']:.4f} (T {calibration['temperature']:.3f})"
             if calibration.get("after") else ""))  # fmt: skip
    robustness = made.get("robustness") or {}
    for name, value in (robustness.get("accuracy") or {}).items():
        print(f"{name} at eps {robustness['eps']:.4g}: {value:.4f}")
    if robustness.get("corruptions"):
        print(f"mean corruption error {robustness['corruptions']['mean_corruption_error']:.4f}")
    fairness = made.get("fairness") or {}
    if "demographic_parity_difference" in fairness:
        print(f"demographic parity difference ({fairness['attribute']}) "
              f"{fairness['demographic_parity_difference']:.4f}")  # fmt: skip
    print(f"card: {made['html']}")
    return 0


COMMAND = Command("the report card of a classifier run", add_arguments, run)
