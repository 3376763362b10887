"""``fathom federate DATA --clients 100 --fraction 0.1 --local-epochs 5 --rounds 300 --split
shards [--flower local]``: federated learning in an in-process simulation or deployed with
Flower, written as a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command, split_train_items


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("items", nargs="*", metavar="DATA [KEY=VALUE ...]")
    parser.add_argument("--model", help="model name (default: the dataset's)")
    parser.add_argument("--clients", type=int, default=100, help="number of clients K")
    parser.add_argument("--fraction", type=float, default=0.1, help="clients per round C")
    parser.add_argument("--local-epochs", type=int, default=5, help="local epochs E")
    parser.add_argument("--rounds", type=int, default=300, help="communication rounds")
    parser.add_argument("--split", default="iid", help="iid, shards (2 classes each), dirichlet")
    parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration")
    parser.add_argument("--strategy", default="fedavg", help="fedavg or fedprox")
    parser.add_argument("--mu", type=float, default=0.01, help="FedProx proximal weight")
    parser.add_argument("--stragglers", type=float, default=0.0,
                        help="share of each round's clients that manage only 1 to E-1 local "
                        "epochs (FedProx aggregates their work, FedAvg drops them)")  # fmt: skip
    parser.add_argument("--server-momentum", type=float, nargs="?", const=0.9,
                        help="FedAvgM: server momentum (default 0.9 when given)")  # fmt: skip
    parser.add_argument("--server-adam", action="store_true", help="FedAdam server optimizer")
    parser.add_argument("--server-lr", type=float, help="server learning rate (FedAvgM/FedAdam)")
    parser.add_argument("--batch-size", type=int, help="local batch B (default 10)")
    parser.add_argument("--processes", type=int, default=1,
                        help="train a round's clients in N worker processes, one thread each "
                        "(the simulation; default 1)")  # fmt: skip
    parser.add_argument("--seed", type=int, help="seed of the split, sampling and training")
    parser.add_argument("--run-dir", help="parent folder of run folders (default runs)")
    parser.add_argument("--name", help="run folder name")
    parser.add_argument("--resume", metavar="RUN", help="continue an interrupted federated run")
    parser.add_argument("--flower", metavar="TARGET",
                        help="deploy with Flower instead of simulating: 'local' (a SuperLink and one "
                        "SuperNode per client on 127.0.0.1), a SuperLink's HOST:PORT (Control API, "
                        "insecure) or a SuperLink connection of your Flower config")  # fmt: skip


def settings(args: argparse.Namespace) -> dict[str, object]:
    server = "fedadam" if args.server_adam else "fedavgm" if args.server_momentum else "fedavg"
    chosen = {
        "clients": args.clients, "fraction": args.fraction, "local_epochs": args.local_epochs,
        "rounds": args.rounds, "split": args.split, "alpha": args.alpha,
        "strategy": args.strategy, "mu": args.mu, "server": server, "processes": args.processes,
        "stragglers": args.stragglers,
        "server_lr": args.server_lr or (0.01 if args.server_adam else 1.0),
    }  # fmt: skip
    if args.server_momentum:
        chosen["server_momentum"] = args.server_momentum
    return chosen


def run(args: argparse.Namespace) -> int:
    from fathom.api.federate import federate

    if args.resume:
        summarize(federate(resume=args.resume).path)
        return 0
    dataset, overrides = split_train_items(args.items)
    flags = {"data.batch_size": args.batch_size, "train.seed": args.seed, "run.dir": args.run_dir,
             "run.name": args.name}  # fmt: skip
    overrides = [*(f"{k}={v}" for k, v in flags.items() if v is not None), *overrides]
    run_dir = federate(dataset, args.model, overrides=overrides, flower=args.flower,
                       **settings(args)).path  # fmt: skip
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
    print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}")


COMMAND = Command("federated learning: a simulation of clients keeping their data", add_arguments,
                  run, "items")  # fmt: skip
