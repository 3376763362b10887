"""``fathom resume RUN``: continue an interrupted run exactly where it stopped."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command, print_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from fathom.api import resume

    print_summary(resume(args.run, progress="none" if args.quiet else None))
    return 0


COMMAND = Command("continue an interrupted run exactly where it stopped", add_arguments, run)
