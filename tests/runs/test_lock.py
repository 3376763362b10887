"""One trainer per run folder: resuming a run another process is training is one line, exit 2,
with the folder untouched; the lock goes with its holder, ``kill -9`` included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fathom.cli import main
from fathom.runs.folder import update_run_json
from fathom.runs.lock import RunBusy, training_lock, try_lock

HOLDER = """import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def test_a_held_run_refuses_a_second_trainer_until_released(tmp_path: Path) -> None:
    with (
        training_lock(tmp_path),
        pytest.raises(RunBusy, match="being trained by another process"),
        training_lock(tmp_path),
    ):
        pass
    with training_lock(tmp_path):  # released at the end of the block
        pass
    assert not any(tmp_path.iterdir())  # no lock file is left in the folder


def test_the_lock_of_a_process_killed_with_sigkill_is_gone(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert try_lock(tmp_path) == (None, True)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    descriptor, busy = try_lock(tmp_path)
    assert not busy and descriptor is not None
    os.close(descriptor)


def test_resume_of_a_run_being_trained_is_one_line_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["train", "digits", "train.max_steps=4", "model.channels=[4]", "model.hidden=8",
                 "--run-dir", str(tmp_path), "--name", "busy", "--quiet"]  # fmt: skip
    assert main(arguments) == 0
    run = tmp_path / "busy"
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    capsys.readouterr()
    with training_lock(run):  # as another process training it
        assert main(["resume", str(run), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "being trained by another process" in error
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
    assert main(["resume", str(run), "--quiet"]) == 0  # free again


def test_a_federated_resume_of_a_run_being_trained_is_refused(tmp_path: Path) -> None:
    from fathom.api.federate import federate

    update_run_json(tmp_path, kind="federated", federated={}, status="running")
    with training_lock(tmp_path), pytest.raises(RunBusy):
        federate(resume=tmp_path)
