"""``fathom train [TARGET] [KEY=VALUE ...]``: train a model and write its run folder."""

from __future__ import annotations

import argparse

from fathom.cli.options import (
    Command,
    add_target_arguments,
    print_saved_diagnosis,
    print_summary,
    train_target,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--epochs", type=int, help="number of epochs")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--batch-size", type=int, help="batch size")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    parser.add_argument(
        "--data-dir",
        help="where datasets are found or downloaded (default $FATHOM_DATA_DIR or "
        "~/.cache/fathom/datasets)",
    )
    parser.add_argument("--run-dir", help="parent folder of run folders (default runs)")
    parser.add_argument("--name", help="run folder name")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """The command's flags as dotted overrides (they come before the user's KEY=VALUE ones)."""
    flags = {
        "model.name": args.model,
        "train.epochs": args.epochs,
        "optim.lr": args.lr,
        "data.batch_size": args.batch_size,
        "train.seed": args.seed,
        "train.device": args.device,
        "data.data_dir": args.data_dir,
        "run.dir": args.run_dir,
        "run.name": args.name,
        "run.progress": "none" if args.quiet else None,
    }
    return [f"{key}={value}" for key, value in flags.items() if value is not None]


def run(args: argparse.Namespace) -> int:
    from fathom.api import fit

    config, dataset, overrides = train_target(args.items)
    trained = fit(args.model, dataset, config=config, overrides=[*flag_overrides(args), *overrides])
    print_summary(trained)
    print_saved_diagnosis(trained.path)
    return 0


COMMAND = Command(
    "train a model (default: a CNN on the embedded digits)", add_arguments, run, "items"
)
