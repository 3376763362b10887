"""``fathom lr-find [TARGET] [KEY=VALUE ...]``: sweep the learning rate and suggest one."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command, add_target_arguments, train_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--output", type=Path, default=Path("lr_finder.png"), help="plot file")
    parser.add_argument("--start", type=float, default=1e-7, help="first learning rate")
    parser.add_argument("--end", type=float, default=10.0, help="last learning rate")
    parser.add_argument("--steps", type=int, default=100, help="number of batches")


def run(args: argparse.Namespace) -> int:
    from fathom.api import lr_find

    config, dataset, overrides = train_target(args.items)
    if args.model:
        overrides = [f"model.name={args.model}", *overrides]
    result = lr_find(
        args.model, dataset, config=config, overrides=overrides, output=args.output,
        start=args.start, end=args.end, steps=args.steps,
    )  # fmt: skip
    if result.flat:
        from fathom.diagnosis.lr_finder import flat_sweep_message

        print(f"warning: {flat_sweep_message(result)}")
    print(f"suggested learning rate: {result.suggestion:.3g} ({result.rule})")
    if result.steepest is not None:
        print(f"steepest descent at:     {result.steepest:.3g}")
    print(f"loss was lowest at:      {result.minimum:.3g}")
    print(f"plot: {args.output}")
    print(f"use it: fathom train ... optim.lr={result.suggestion:.3g}   (or optim.lr=auto)")
    return 0


COMMAND = Command(
    "sweep the learning rate and suggest one (same TARGET and KEY=VALUE as train)",
    add_arguments,
    run,
    "items",
)
