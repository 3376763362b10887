"""``fathom eval RUN``: metrics of a run on its test (or another) split."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", default="test", help="train, val or test")
    parser.add_argument("--data-dir", help="dataset folder, if it moved")


def run(args: argparse.Namespace) -> int:
    from fathom.runs import load

    loaded = load(args.run)
    if args.data_dir:
        loaded.config.data.data_dir = args.data_dir
    metrics = loaded.evaluate(args.split)
    for key, value in metrics.items():
        print(f"{args.split} {key}: {value:.4f}")
    loaded.report()
    return 0


COMMAND = Command("evaluate a run on its test (or another) split", add_arguments, run)
