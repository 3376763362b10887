"""``fathom probe RUN [DATA]``: the kNN accuracy of a run's backbone features."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument("data", nargs="?", help="dataset name (default: the run's own)")
    parser.add_argument("--split", default="test", help="val or test")
    parser.add_argument("--k", type=int, default=200, help="neighbours that vote")
    parser.add_argument("--temperature", type=float, default=0.1, help="vote weight exp(sim/T)")
    parser.add_argument("--bank", type=int, default=10_000, help="training examples in the bank")
    parser.add_argument("--data-dir", help="where datasets are found")


def run(args: argparse.Namespace) -> int:
    from fathom.api import knn_evaluate, load

    loaded = load(args.run)
    if args.data_dir:
        loaded.config.data.data_dir = args.data_dir
    result = knn_evaluate(
        loaded, args.data, split=args.split, k=args.k, temperature=args.temperature,
        bank=args.bank,
    )  # fmt: skip
    print(
        f"{result['split']} knn_accuracy: {result['knn_accuracy']:.4f} (k={result['k']}, "
        f"bank of {result['bank']} training examples, {result['queries']} queries of "
        f"{result['data']}); the linear probe: fathom finetune {args.run} {result['data']} "
        "transfer.mode=features transfer.cache_features=true"
    )
    return 0


COMMAND = Command(
    "kNN accuracy of a run's backbone features (self-supervised protocol)", add_arguments, run
)
