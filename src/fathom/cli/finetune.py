"""``fathom finetune SOURCE DATA [KEY=VALUE ...]``: a run that starts from another."""

from __future__ import annotations

import argparse

from fathom.cli.options import (
    Command,
    add_report_argument,
    print_saved_diagnosis,
    print_summary,
    train_target,
)
from fathom.cli.train import flag_overrides
from fathom.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a run folder (runs/NAME) or pretrained:minilm")
    parser.add_argument(
        "items",
        nargs="*",
        metavar="DATA [KEY=VALUE ...]",
        help="dataset name, config .yaml, image folder or .csv; then dotted config overrides "
        "(transfer.mode=features|fine_tune|gradual|full, optim.layer_decay=0.5, ...)",
    )
    for flag, kind, text in (
        ("--epochs", int, "number of epochs"),
        ("--lr", float, "learning rate (of the head, with optim.layer_decay)"),
        ("--batch-size", int, "batch size"),
        ("--seed", int, "random seed"),
    ):
        parser.add_argument(flag, type=kind, help=text)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    parser.add_argument("--data-dir", help="where datasets are found")
    parser.add_argument("--run-dir", help="parent folder of run folders (default runs)")
    parser.add_argument("--name", help="run folder name")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_report_argument(parser)
    parser.set_defaults(model=None)


def run(args: argparse.Namespace) -> int:
    from fathom.api import finetune

    config, dataset, overrides = train_target(args.items)
    if dataset is None and not config:
        raise ConfigError("fathom finetune needs the data to fine-tune on: SOURCE DATA")
    trained = finetune(
        args.source, dataset, config=config, overrides=[*flag_overrides(args), *overrides]
    )
    report = (trained.summary.get("transfer") or {}).get("load_report")
    if report:
        print(report)
    print_summary(trained)
    print_saved_diagnosis(trained.path)
    return 0


COMMAND = Command(
    "fine-tune a run or a pretrained model (pretrained:minilm) on new data",
    add_arguments,
    run,
    "items",
)
