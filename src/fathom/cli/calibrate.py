"""``fathom calibrate RUN``: temperature scaling fitted on the validation split, written as the
new run ``RUN-calibrated`` whose predictions use it."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", default="val", help="split T is fitted on (default val)")
    parser.add_argument("--name", help="new run folder name (default RUN-calibrated)")


def run(args: argparse.Namespace) -> int:
    from fathom.api.trust import calibrate

    result = calibrate(args.run, args.split, args.name)
    print(f"temperature {result['temperature']:.4f} (fitted on {result['fitted_on']})")
    for split in dict.fromkeys([result["fitted_on"], "test"]):
        if split in result:
            before, after = result[split]["before"], result[split]["after"]
            print(f"{split}: ECE {before['ece']:.4f} -> {after['ece']:.4f}, "
                  f"NLL {before['nll']:.4f} -> {after['nll']:.4f}")  # fmt: skip
    print(f"calibrated run: {result['path']}")
    return 0


COMMAND = Command("fit temperature scaling; write RUN-calibrated", add_arguments, run)
