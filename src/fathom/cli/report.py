"""``fathom report RUN``: re-draw a run's plots and HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)


def run(args: argparse.Namespace) -> int:
    from fathom.report import write_report
    from fathom.runs.folder import read_run_json

    read_run_json(args.run)
    print(write_report(args.run))
    return 0


COMMAND = Command("re-draw a run's plots and HTML report", add_arguments, run)
