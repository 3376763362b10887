"""``fathom federate DATA --clients 100 --fraction 0.1 --local-epochs 5 --rounds 300 --split
shards [--flower local]`` (or ``fathom federate CONFIG.yaml`` with a ``federated:`` section):
federated learning in an in-process simulation or deployed with Flower, written as a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command, add_report_argument, print_run_folder, train_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("items", nargs="*", metavar="DATA|CONFIG.yaml [KEY=VALUE ...]")
    parser.add_argument("--model", help="model name (default: the dataset's)")
    # Each flag overrides the config's federated: section; the defaults are FederatedConfig's.
    for flag, kind, text in (
        ("--clients", int, "number of clients K (default 100)"),
        ("--fraction", float, "clients per round C (default 0.1)"),
        ("--local-epochs", int, "local epochs E (default 5)"),
        ("--rounds", int, "communication rounds (default 300)"),
        ("--split", str, "iid (default), shards (2 classes each), dirichlet"),
        ("--alpha", float, "Dirichlet concentration (default 0.5)"),
        ("--strategy", str, "fedavg (default) or fedprox"),
        ("--mu", float, "FedProx proximal weight (default 0.01)"),
        ("--stragglers", float, "share of each round's clients that manage only 1 to E-1 local "
         "epochs (FedProx aggregates their work, FedAvg drops them; default 0)"),
        ("--server-lr", float, "server learning rate (FedAvgM 1.0, FedAdam 0.01)"),
        ("--processes", int, "train a round's clients in N worker processes, one thread each "
         "(the simulation; default 1)"),
    ):  # fmt: skip
        parser.add_argument(flag, type=kind, help=text)
    parser.add_argument("--server-momentum", type=float, nargs="?", const=0.9,
                        help="FedAvgM: server momentum (default 0.9 when given)")  # fmt: skip
    parser.add_argument("--server-adam", action="store_true", help="FedAdam server optimizer")
    parser.add_argument("--batch-size", type=int, help="local batch B (default 10)")
    parser.add_argument("--seed", type=int, help="seed of the split, sampling and training")
    parser.add_argument("--run-dir", help="parent folder of run folders (default runs)")
    parser.add_argument("--name", help="run folder name")
    add_report_argument(parser)
    parser.add_argument("--resume", metavar="RUN", help="continue an interrupted federated run")
    parser.add_argument("--flower", metavar="TARGET",
                        help="deploy with Flower instead of simulating: 'local' (a SuperLink and one "
                        "SuperNode per client on 127.0.0.1), a SuperLink's HOST:PORT (Control API, "
                        "insecure) or a SuperLink connection of your Flower config")  # fmt: skip


SETTINGS = ("clients", "fraction", "local_epochs", "rounds", "split", "alpha", "strategy", "mu",
            "stragglers", "server_lr", "processes")  # fmt: skip


def settings(args: argparse.Namespace) -> dict[str, object]:
    """The settings the flags give (those not given come from the config or the defaults)."""
    chosen = {key: getattr(args, key) for key in SETTINGS if getattr(args, key) is not None}
    if args.server_adam:
        chosen["server"] = "fedadam"
    elif args.server_momentum:
        chosen["server"], chosen["server_momentum"] = "fedavgm", args.server_momentum
    return chosen


def run(args: argparse.Namespace) -> int:
    from fathom.api.federate import federate

    if args.resume:
        summarize(federate(resume=args.resume).path)
        return 0
    config, dataset, overrides = train_target(args.items)
    flags = {"data.batch_size": args.batch_size, "train.seed": args.seed, "run.dir": args.run_dir,
             "run.name": args.name, "run.report": "false" if args.no_report else None}  # fmt: skip
    overrides = [*(f"{k}={v}" for k, v in flags.items() if v is not None), *overrides]
    run_dir = federate(dataset, args.model, config=config, overrides=overrides,
                       flower=args.flower, **settings(args)).path  # fmt: skip
    summarize(run_dir)
    return 0


def summarize(run_dir: Path) -> None:
    """The rounds done, the last round's evaluation, the test metrics and where they are."""
    from fathom.runs.folder import read_run_json

    record = read_run_json(run_dir)
    last = record.get("final_round") or {}
    accuracy = last.get("accuracy")
    shown = f", accuracy {accuracy:.4f} after the last round" if accuracy is not None else ""
    print(f"done: {record.get('rounds_completed')} rounds{shown}")
    test = record.get("test") or {}
    if test:
        print("test: " + "  ".join(f"{key} {value:.4f}" for key, value in test.items()
                                    if isinstance(value, float)))  # fmt: skip
    print_run_folder(run_dir)


COMMAND = Command("federated learning: a simulation of clients keeping their data", add_arguments,
                  run, "items")  # fmt: skip
