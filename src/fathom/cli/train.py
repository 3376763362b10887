"""``fathom train [TARGET] [KEY=VALUE ...]``: train a model and write its run folder."""

from __future__ import annotations

import argparse

from fathom.cli.options import (
    Command,
    add_report_argument,
    add_target_arguments,
    print_saved_diagnosis,
    print_summary,
    split_train_items,
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
    add_report_argument(parser)
    parser.add_argument(
        "--nproc", type=int, help="train in N data-parallel processes (starts torchrun)"
    )
    parser.add_argument("--nnodes", type=int, default=1, help="machines taking part (--nproc)")
    parser.add_argument("--node-rank", type=int, default=0, help="this machine's rank (0..)")
    parser.add_argument("--rdzv-endpoint", help="HOST:PORT of node 0, for --nnodes > 1")


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
        "run.report": "false" if args.no_report else None,
    }
    return [f"{key}={value}" for key, value in flags.items() if value is not None]


def run(args: argparse.Namespace) -> int:
    if args.nproc is not None:
        from fathom.api.launch import check_processes, launch
        from fathom.assemble import resolve_config

        target, overrides = split_train_items(args.items)
        layer, dataset, _ = train_target(args.items)
        resolved = resolve_config(
            layer, dataset=dataset, overrides=[*flag_overrides(args), *overrides]
        )
        check_processes(resolved, args.nproc * args.nnodes)
        arguments = ["train", *([target] if target else []), *flag_overrides(args), *overrides]
        endpoint = args.rdzv_endpoint
        return launch(arguments, args.nproc, args.nnodes, args.node_rank, endpoint)
    from fathom.api import fit
    from fathom.engine.distributed import is_main_process

    config, dataset, overrides = train_target(args.items)
    trained = fit(args.model, dataset, config=config, overrides=[*flag_overrides(args), *overrides])
    if not is_main_process():
        return 0
    print_summary(trained)
    print_saved_diagnosis(trained.path)
    return 0


COMMAND = Command(
    "train a model (default: a CNN on the embedded digits)", add_arguments, run, "items"
)
