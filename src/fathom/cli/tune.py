"""``fathom tune [TARGET] [KEY=VALUE ...] --space space.yaml --trials N``: hyperparameter search."""

from __future__ import annotations

import argparse

from fathom.cli.options import Command, add_target_arguments, train_target


def add_study_arguments(parser: argparse.ArgumentParser, noun: str) -> None:
    """Where a study lives and how it runs: workers, storage, name, folder, time, resume
    (shared by ``fathom tune`` and ``fathom nas``)."""
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--storage", help="Optuna storage URL (default: SQLite in the study folder)"
    )
    parser.add_argument("--study", help="study name (default dataset-time)")
    parser.add_argument("--dir", default="studies", help="parent folder of study folders")
    parser.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
    parser.add_argument("--resume", metavar="STUDY", help=f"continue the {noun} in this folder")
    parser.add_argument("--no-report", action="store_true", help="no HTML reports (faster)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--space", help="search space YAML: config keys → distributions")
    parser.add_argument("--trials", type=int, help="trials to finish (default 20)")
    add_study_arguments(parser, "study")
    parser.add_argument("--sampler", default="tpe",
                        help="tpe (default), random, grid, gp, cmaes, nsga2")  # fmt: skip
    parser.add_argument("--pruner", default="median", help="median (default), hyperband, none")
    parser.add_argument("--objective", action="append", default=[], metavar="COST",
                        help="also minimise latency_ms, parameters or macs (multi-objective)")  # fmt: skip
    parser.add_argument("--keep-runs", type=int, default=3,
                        help="full run folders for the best N trials, light records for the rest")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from fathom.api.tune import tune
    from fathom.errors import ConfigError

    if args.resume is None and args.space is None:
        raise ConfigError("give a search space with --space space.yaml (or --resume STUDY)")
    if args.keep_runs < 1:
        raise ConfigError(f"--keep-runs must be at least 1, got {args.keep_runs}")
    config, dataset, overrides = train_target(args.items)
    if args.model:
        overrides = [f"model.name={args.model}", *overrides]
    tune(
        dataset, args.space, config=config, overrides=overrides, trials=args.trials,
        workers=args.workers, storage=args.storage, study=args.study, sampler=args.sampler,
        pruner=args.pruner, timeout=args.timeout, resume=args.resume, keep_runs=args.keep_runs,
        seed=args.seed, costs=args.objective, directory=args.dir, quiet=args.quiet,
        report=not args.no_report,
    )  # fmt: skip
    return 0


COMMAND = Command("search hyperparameters with Optuna", add_arguments, run, "items")
