"""``fathom list KIND``: every name of one registry (models, datasets, optimizers, ...)."""

from __future__ import annotations

import argparse

from fathom.cli.options import Command
from fathom.registry import REGISTRIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=list(REGISTRIES))


def run(args: argparse.Namespace) -> int:
    registry = REGISTRIES[args.kind]
    names = registry.names()
    width = max((len(name) for name in names), default=0)
    for name in names:
        kind = f"[{registry.kind_of(name)}] " if registry.kind_of(name) else ""
        print(f"{name:<{width}}  {kind}{registry.describe(name)}".rstrip())
    return 0


COMMAND = Command(f"list {', '.join(REGISTRIES)}", add_arguments, run)
