"""``fathom nas [TARGET] --family cnn --budget-latency-ms 2 --trials 40``: architecture search."""

from __future__ import annotations

import argparse

from fathom.cli.options import Command, add_target_arguments, train_target
from fathom.cli.tune import add_study_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--family", default="cnn", help="architecture family (default cnn)")
    parser.add_argument("--trials", type=int, default=40, help="architectures to try (default 40)")
    parser.add_argument("--strategy", default="evolution",
                        help="evolution (regularised, default), random (with early stopping), "
                        "nsga2 (accuracy against latency)")  # fmt: skip
    parser.add_argument("--budget-latency-ms", type=float, help="CPU latency limit, batch 1")
    parser.add_argument("--budget-params", type=float, help="parameter count limit")
    parser.add_argument("--budget-macs", type=float, help="multiply-accumulate limit per input")
    parser.add_argument("--trial-epochs", type=int, help="epochs per trial (default: a third)")
    parser.add_argument("--trial-steps", type=int,
                        help="cut each trial at this many optimizer steps (a cheaper proxy)")  # fmt: skip
    parser.add_argument("--population", type=int, default=10, help="evolution's population")
    parser.add_argument("--no-retrain", action="store_true", help="do not re-train the winner")
    add_study_arguments(parser, "search")
    parser.add_argument("--seed", type=int, default=0, help="search seed")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from fathom.api.tune import nas

    config, dataset, overrides = train_target(args.items)
    nas(
        dataset, family=args.family, trials=args.trials, strategy=args.strategy,
        budget_latency_ms=args.budget_latency_ms, budget_params=args.budget_params,
        budget_macs=args.budget_macs, trial_epochs=args.trial_epochs, trial_steps=args.trial_steps,
        config=config,
        overrides=overrides, population=args.population, retrain=not args.no_retrain,
        workers=args.workers, storage=args.storage, study=args.study, timeout=args.timeout,
        resume=args.resume, seed=args.seed, directory=args.dir, quiet=args.quiet,
        report=not args.no_report,
    )  # fmt: skip
    return 0


COMMAND = Command("search architectures of a family under a budget", add_arguments, run, "items")
