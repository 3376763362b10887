"""``fathom doctor RUN``: what is wrong with a run, with evidence and the fix."""

from __future__ import annotations

import argparse
from pathlib import Path

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path)


def run(args: argparse.Namespace) -> int:
    from fathom.api import doctor
    from fathom.diagnosis.doctor import format_diagnoses

    print(format_diagnoses(doctor(args.run)))
    return 0


COMMAND = Command("diagnose a finished run: problems, evidence, remedies", add_arguments, run)
