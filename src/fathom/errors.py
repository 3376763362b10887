"""User-facing errors: one line, exit status 2, no traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class FathomError(Exception):
    """An error the user can act on. The CLI prints ``str(error)`` on one line and exits with 2."""

    exit_code = 2
    # the run folder a failed training kept (its diagnosis is printed after the error line)
    run_dir: Path | None = None


class ConfigError(FathomError):
    """A config key, type or value is wrong."""


class DataError(FathomError):
    """A dataset, file, row or column is wrong."""


class CheckpointError(FathomError):
    """A checkpoint is missing, truncated, altered or not Fathom's."""


class TrainingDiverged(FathomError):
    """The loss became NaN or infinite."""


def closest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest valid choice, or ``""`` if none is close."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
