"""What the commands share: the parser class, the ``Command`` record, the TARGET and
KEY=VALUE arguments of train-like commands, and the run summary they print."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from fathom.errors import FathomError


class Parser(argparse.ArgumentParser):
    """argparse with Fathom's one-line errors and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


@dataclass(frozen=True)
class Command:
    """A ``fathom`` command: its help line, its arguments, and what it does (exit status)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    trailing: str | None = None  # the list argument that may also follow options


def is_existing_path(item: str) -> bool:
    """Whether ``item`` names an existing file or folder (False for names the OS refuses)."""
    try:
        return Path(item).exists()
    except (OSError, ValueError):  # e.g. a 300-byte override is no file name
        return False


def split_train_items(items: list[str]) -> tuple[str | None, list[str]]:
    """``[TARGET] [KEY=VALUE ...]`` → (target, overrides)."""
    target = None
    overrides = []
    for item in items:
        if "=" in item and not is_existing_path(item):
            overrides.append(item)
        elif target is None:
            target = item
        else:
            raise FathomError(
                f"unexpected argument '{item}': give one dataset/config/path, then KEY=VALUE overrides"
            )
    return target, overrides


def train_target(items: list[str]) -> tuple[dict[str, Any], str | None, list[str]]:
    """``[TARGET] [KEY=VALUE ...]`` → (config layer, dataset name, overrides)."""
    from fathom.config import load_yaml

    target, overrides = split_train_items(items)
    config: dict[str, Any] = {}
    dataset = None
    if target is not None:
        path = Path(target)
        if target.endswith((".yaml", ".yml")):
            config = load_yaml(path)
        elif is_existing_path(target) and path.is_dir():
            config = {"data": {"name": "folder", "path": str(path)}}
        elif target.endswith((".csv", ".tsv")):
            if not is_existing_path(target) or not path.is_file():
                raise FathomError(f"CSV file not found: {path}")
            config = {"data": {**table_dataset(target, overrides), "path": str(path)}}
        else:
            dataset = target
    return config, dataset, overrides


def table_dataset(target: str, overrides: list[str]) -> dict[str, str]:
    """``text_csv`` when a text column is named (data.text_column=...), else the ``csv`` table."""
    if any(item.startswith("data.text_column=") for item in overrides):
        return {"name": "text_csv"}
    return {"name": "csv", "delimiter": "\t"} if target.endswith(".tsv") else {"name": "csv"}


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """``[TARGET] [KEY=VALUE ...]`` and ``--model``, as train, lr-find and tune take them."""
    parser.add_argument(
        "items",
        nargs="*",
        metavar="[TARGET] [KEY=VALUE ...]",
        help="dataset name, config .yaml, image folder or .csv; then dotted config overrides",
    )
    parser.add_argument("--model", help="model name (fathom list models)")


def print_summary(run: Any) -> None:
    """What a finished training run reached, and where its folder and report are."""
    summary = run.summary
    test = summary.get("test") or {}
    shown = "  ".join(
        f"{key} {value:.4f}" for key, value in test.items() if isinstance(value, float)
    )
    seconds = summary.get("duration_seconds", 0)
    where = " ".join(str(summary[key]) for key in ("device", "precision") if summary.get(key))
    print(
        f"done: {summary.get('epochs_completed')} epochs, {summary.get('steps')} steps in "
        f"{seconds:.1f}s on {where or 'cpu'} ({summary.get('message') or 'completed'})"
    )
    if shown:
        print(f"test: {shown}")
    print_run_folder(run.path)


def print_run_folder(run_dir: Path) -> None:
    """Where a run's folder is, and its report when it wrote one (``run.report``)."""
    print(f"run folder: {run_dir}")
    if (run_dir / "report.html").exists():
        print(f"report: {run_dir / 'report.html'}")


def add_report_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-report``: the ``run.report=false`` of train, finetune and federate."""
    parser.add_argument(
        "--no-report", action="store_true", help="no report.html (write it later: fathom report)"
    )


def print_failure_diagnosis(run_dir: Path) -> None:
    """After a failed training (a diverged loss): the doctor's findings, on standard error."""
    from fathom.diagnosis.doctor import format_diagnoses, read_diagnosis

    diagnoses = read_diagnosis(run_dir)
    if diagnoses:
        print(format_diagnoses(diagnoses), file=sys.stderr)


def print_saved_diagnosis(run_dir: Path) -> None:
    """The doctor's verdict written at the end of training, if there is one."""
    from fathom.diagnosis.doctor import format_diagnoses, read_diagnosis

    diagnoses = read_diagnosis(run_dir)
    if diagnoses is not None:
        print(format_diagnoses(diagnoses))
