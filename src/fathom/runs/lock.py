"""One trainer per run folder: a lock held while a process trains a run, so a second
``fathom resume`` (or ``fathom federate --resume``) of a run that is still training is refused in
one line instead of two processes writing one checkpoint.

The lock is ``flock`` on the run folder itself (no file is added to the folder). The kernel drops
it when its holder ends, ``kill -9`` included, so a killed run can be resumed at once; there is
no stale lock file to clean up. Where ``fcntl`` is missing (Windows) runs are not locked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fathom.errors import FathomError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]


class RunBusy(FathomError):
    """Another process is training this run."""


def try_lock(run_dir: Path) -> tuple[int | None, bool]:
    """``(descriptor, busy)``: the folder's descriptor holding the lock, or ``busy`` when
    another open of the folder holds it (another process, or this one through another call)."""
    if fcntl is None:
        return None, False
    descriptor = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None, True
    return descriptor, False


@contextmanager
def training_lock(run_dir: Path, execution: Any = None) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block, or raise ``RunBusy`` (exit 2) when another process
    trains it. Under torchrun (``execution`` distributed) the main process takes the lock and
    broadcasts the verdict, so every rank stops or goes on together."""
    main = execution is None or execution.is_main
    descriptor, busy = try_lock(run_dir) if main else (None, False)
    if execution is not None:
        busy = execution.broadcast(busy)
    if busy:
        raise RunBusy(
            f"{run_dir} is being trained by another process; wait for it to end "
            "(or stop it), then resume"
        )
    try:
        yield
    finally:
        if descriptor is not None:
            os.close(descriptor)  # closing the last descriptor releases the lock
