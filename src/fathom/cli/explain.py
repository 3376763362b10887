"""``fathom explain RUN [FILE ...]``: saliency, integrated gradients, Grad-CAM, occlusion, ..."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument(
        "inputs", nargs="*", type=Path, help="image/.npy/.csv files (default: test examples)"
    )
    parser.add_argument(
        "--method", default="saliency",
        help="saliency, integrated-gradients, grad-cam, occlusion, filters, attention or top-loss",
    )  # fmt: skip
    parser.add_argument("--target", type=int, help="class to explain (default: the predicted one)")
    parser.add_argument("--count", type=int, default=16, help="examples shown by top-loss")


def run(args: argparse.Namespace) -> int:
    from fathom.api import explain

    files = explain(args.run, args.inputs or None, args.method, args.target, args.count)
    for file in files:
        print(f"wrote {file}")
    print(f"report: {args.run / 'report.html'}")
    return 0


COMMAND = Command(
    "explain predictions: saliency, integrated-gradients, grad-cam, occlusion, ...",
    add_arguments,
    run,
    "inputs",
)
