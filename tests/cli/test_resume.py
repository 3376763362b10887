"""Kill real training processes with SIGKILL, from an early step to the report; resuming must
give the weights, checkpoints and metrics of an uninterrupted run, bitwise, for every task kind.

The kill points come from a time-seeded RNG whose seed every assertion message prints;
``FATHOM_KILL_SEED=<seed>`` replays them. A kill that lands after the process has finished
still checks something: resuming a finished run must change nothing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

SEED = int(os.environ.get("FATHOM_KILL_SEED") or time.time_ns() % 1_000_000_007)
HANG = 900  # seconds: only stops a hung process; a normal run here takes seconds
COMMON = ["train.log_every_steps=1", "train.threads=1", "--quiet", "--no-report"]
TINY_LM = [
    "tinyshakespeare", "data.max_chars=20000", "data.context=32", "data.stride=32",
    "data.batch_size=32", "model.dim=16", "model.depth=1", "model.heads=2", "model.context=32",
    "train.precision=fp32", "task.sample_tokens=8", "train.max_steps=12",
    "train.checkpoint_every_steps=3",
]  # fmt: skip
TINY_IMAGES = ["train.epochs=2", "data.batch_size=64", "data.limit=256",
               "train.checkpoint_every_steps=2", "model.width=8"]  # fmt: skip
KINDS: dict[str, list[str]] = {
    "classification": ["digits", "train.epochs=2", "model.channels=[4]", "model.hidden=8",
                       "train.checkpoint_every_steps=4", "model.dropout=0.3", "train.ema_decay=0.9"],
    "regression": ["{csv}", "data.target=price", "model.name=mlp", "model.hidden=[8]",
                   "train.epochs=3", "data.batch_size=32", "train.checkpoint_every_steps=2"],
    "language_model": TINY_LM,
    "seq2seq": ["dates", "train.epochs=2", "data.size=256", "data.val_size=32",
                "data.test_size=32", "data.batch_size=64", "model.hidden_size=8",
                "model.dropout=0.2", "train.checkpoint_every_steps=2"],
    "forecast": ["sunspots", "train.epochs=2", "data.batch_size=64", "model.hidden_size=8",
                 "task.baselines=false", "train.checkpoint_every_steps=2"],
    "gan": ["{mnist_tiny}", *TINY_IMAGES, "model.name=gan", "task.name=gan",
            "model.latent_dim=8", "optim.name=adam", "optim.betas=[0.5,0.999]"],
    "vae": ["{mnist_tiny}", *TINY_IMAGES, "model.name=vae", "task.name=vae", "optim.name=adam"],
    "diffusion": ["{mnist_tiny}", *TINY_IMAGES, "model.name=unet", "task.name=diffusion",
                  "task.timesteps=50", "task.steps=2", "train.channels_last=false"],
}  # fmt: skip
FAST = {"classification"}  # the others are marked slow


FORK_SERVER = """import os, sys, traceback
import matplotlib.pyplot, torch._dynamo, fathom.report.plots
from fathom.cli.main import main
for line in sys.stdin:
    command, *fields = line.rstrip("\\n").split("\\0")
    if command == "wait":
        print(os.waitstatus_to_exitcode(os.waitpid(int(fields[0]), 0)[1]), flush=True)
        continue
    cwd, out, err, *arguments = fields
    pid = os.fork()
    if pid == 0:
        os.chdir(cwd)
        for stream, path in ((1, out), (2, err)):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), stream)
        try:
            code = main(arguments)
        except SystemExit as exit_:
            code = exit_.code
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)
    print(pid, flush=True)
"""


class ForkServer:
    """A process that imports what a ``fathom`` run imports (torch, its compiler stack that
    optimizers load, matplotlib), runs no tensor op (so forking it is safe), then forks one child
    per command line it is sent: each child is a separate process running ``fathom.cli.main``,
    killed with a real SIGKILL, without paying the imports again (seconds a process on 2 cores).
    It starts while the reference run trains."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.process = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER], cwd=cwd, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip

    def ask(self, *fields: str) -> str:
        self.process.stdin.write("\0".join(fields) + "\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        return self.process.stdout.readline().strip()  # type: ignore[union-attr]

    def run(self, *arguments: str) -> ForkedRun:
        number = len(list(self.cwd.glob("fork-*.out")))
        out, err = (self.cwd / f"fork-{number}.{name}" for name in ("out", "err"))
        reply = self.ask("run", str(self.cwd), str(out), str(err), *arguments)
        assert reply.isdigit(), f"the fork server failed to start a run: {reply!r}"
        return ForkedRun(self, int(reply), out, err)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


class ForkedRun:
    """What the kill test needs of a ``subprocess.Popen`` for a forked child (poll, SIGKILL,
    communicate with its output): the fork server, its parent, reaps it and says its status."""

    def __init__(self, server: ForkServer, pid: int, out: Path, err: Path) -> None:
        self.server, self.pid, self.out, self.err = server, pid, out, err
        self.returncode: int | None = None

    def running(self) -> bool:
        try:  # a finished child stays a zombie (state Z) until the server reaps it
            return Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
        except OSError:
            return False

    def poll(self) -> int | None:
        if self.returncode is None and not self.running():
            self.communicate()
        return self.returncode

    def send_signal(self, number: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, number)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        if self.returncode is None:
            deadline = time.monotonic() + (timeout or HANG)
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not self.running(), f"run {self.pid} still running after {timeout} s (hung)"
            self.returncode = int(self.server.ask("wait", str(self.pid)))
        return self.out.read_text(), self.err.read_text()


def train_in_this_process(arguments: list[str], cwd: Path, monkeypatch) -> None:
    """The uninterrupted reference run, in this process: it pays no interpreter start, and
    train.threads=1 gives it the same bits as the killed processes (threads restored after)."""
    from fathom.cli import main

    threads = torch.get_num_threads()
    monkeypatch.chdir(cwd)
    try:
        assert main(arguments) == 0
    finally:
        torch.set_num_threads(threads)


def finished(process: ForkedRun, context: str) -> None:
    _, err = process.communicate(timeout=HANG)
    assert process.returncode == 0, f"{context}: exit {process.returncode}: {err[-2000:]}"


def metrics(run: Path) -> list[dict]:
    """The complete lines of metrics.jsonl (a kill can leave half a line at the end)."""
    path = run / "metrics.jsonl"
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def steps_logged(run: Path) -> int:
    return max((line["step"] for line in metrics(run) if line["kind"] == "train"), default=0)


def completed(run: Path) -> bool:
    try:
        return json.loads((run / "run.json").read_text()).get("status") == "completed"
    except (OSError, ValueError):
        return False


def kill_points(rng: random.Random, total: int, first_checkpoint: int) -> list[tuple[str, float]]:
    """One kill at a random step after the first checkpoint, then one late in the run."""
    early = ("step", float(rng.randrange(first_checkpoint + 1, total)))
    late = rng.choice(["after the last step", "during the final evaluation", "during the report"])
    return [early, (late, rng.uniform(0.0, 0.3))]


def reached(run: Path, point: tuple[str, float], total: int) -> Callable[[], bool]:
    name, value = point
    if name == "step":
        checkpoint = run / "checkpoints" / "last.safetensors"
        return lambda: steps_logged(run) >= value and checkpoint.exists()
    if name == "after the last step":
        return lambda: steps_logged(run) >= total
    if name == "during the final evaluation":
        return lambda: (run / "model.safetensors").exists()
    return lambda: completed(run)


def kill_at(process: ForkedRun, run: Path, point: tuple[str, float], total: int) -> str:
    """SIGKILL ``process`` once ``point`` is reached (plus its delay); say where it landed."""
    condition, deadline = reached(run, point, total), time.monotonic() + HANG
    while not condition() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    if point[0] != "step":
        time.sleep(point[1])
    landed = "after the process had finished" if process.poll() is not None else "in flight"
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return f"{point[0]} {point[1]:g}: killed {landed} at step {steps_logged(run)}"


def compare(run: Path, reference: Path, context: str) -> None:
    """Weights, checkpoints and metric values must equal the uninterrupted run's, bitwise: two
    runs with the same seed and threads write the same bytes."""
    names = ["model.safetensors", "checkpoints/last.safetensors", "checkpoints/best.safetensors"]
    for name in [name for name in names if (reference / name).exists()]:
        expected, actual = load_file(str(reference / name)), load_file(str(run / name))
        assert actual.keys() == expected.keys(), f"{context}: {name} keys differ"
        for key, tensor in expected.items():
            assert torch.equal(actual[key], tensor), f"{context}: {name} {key} differs"
        assert (run / name).read_bytes() == (reference / name).read_bytes(), (
            f"{context}: {name} equal tensors but different bytes"
        )
    drop = {"samples_per_second"}
    lines = [{k: v for k, v in line.items() if k not in drop} for line in metrics(run)]
    expected_lines = [
        {k: v for k, v in line.items() if k not in drop} for line in metrics(reference)
    ]
    assert lines == expected_lines, f"{context}: metrics.jsonl differs"
    record, expected_record = (json.loads((r / "run.json").read_text()) for r in (run, reference))
    assert record["status"] == "completed", context
    assert (record["steps"], record["test"]) == (expected_record["steps"], expected_record["test"])


def arguments_for(kind: str, tmp_path: Path, shared: Path | None) -> list[str]:
    values = {"csv": str(write_regression_csv(tmp_path / "table.csv"))}
    if shared is not None:
        values["mnist_tiny"] = str(shared / "mnist_tiny")
    arguments = [argument.format(**values) for argument in KINDS[kind]]
    if kind == "language_model":
        arguments += ["--data-dir", str(shared)]
    return [*arguments, *COMMON]


def write_regression_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(240, 3))
    target = features @ np.array([2.0, -1.0, 0.5]) + 0.05 * rng.normal(size=240)
    rows = [
        f"{a:.4f},{b:.4f},{c:.4f},{t:.4f}" for (a, b, c), t in zip(features, target, strict=True)
    ]
    path.write_text("\n".join(["x1,x2,x3,price", *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    "kind", [kind if kind in FAST else pytest.param(kind, marks=pytest.mark.slow) for kind in KINDS]
)
def test_kill_at_random_moments_and_resume_exactly(
    kind: str, tmp_path, request, monkeypatch
) -> None:
    shared = None
    if kind in ("language_model", "gan", "vae", "diffusion"):
        shared = request.getfixturevalue("shared_datasets")
    arguments = arguments_for(kind, tmp_path, shared)
    train = ["train", *arguments, "--run-dir", "runs", "--name"]
    seed = f"kill seed {SEED} (replay: FATHOM_KILL_SEED={SEED})"
    server = ForkServer(tmp_path)  # warms up while the reference trains
    try:
        train_in_this_process([*train, "reference"], tmp_path, monkeypatch)
        reference = tmp_path / "runs" / "reference"
        total = steps_logged(reference)
        every = int(next(a for a in arguments if "checkpoint_every_steps" in a).split("=")[1])
        points = kill_points(random.Random(f"{SEED}-{kind}"), total, every)
        run, landed = tmp_path / "runs" / "killed", []
        process = server.run(*train, "killed")
        for point in points:
            landed.append(kill_at(process, run, point, total))
            process = server.run("resume", str(run))
        context = f"{kind}, {seed}; kills: {'; '.join(landed)}"
        print(context)  # shown by pytest -s or -rP: where the kills landed
        finished(process, context)
    finally:
        server.close()
    compare(run, reference, context)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs-v0"


def run_cli(*arguments: str) -> None:
    from fathom.cli import main

    assert main([*arguments, "--quiet"]) == 0


def test_resuming_a_run_that_reached_max_steps_trains_no_more(tmp_path) -> None:
    run_cli("train", "digits", "train.max_steps=10", "model.channels=[4]", "model.hidden=8",
            "--run-dir", str(tmp_path), "--name", "capped")  # fmt: skip
    run, finished_copy = tmp_path / "capped", tmp_path / "copy"
    shutil.copytree(run, finished_copy)
    run_cli("resume", str(run))
    record = json.loads((run / "run.json").read_text())
    assert record["steps"] == 10 and record["message"] == "reached train.max_steps=10"
    for name in ["model.safetensors", "checkpoints/last.safetensors", "metrics.jsonl"]:
        assert (run / name).read_bytes() == (finished_copy / name).read_bytes(), name


def test_a_restored_state_past_max_seconds_trains_no_more(blobs) -> None:
    from tests_support import trainer_for

    trainer = trainer_for(blobs, epochs=1, max_seconds=1000.0)
    trainer.fit()
    tensors, saved = trainer.checkpoint_state()
    assert saved["train_state"]["elapsed_seconds"] > 0  # the budget spent travels with it
    assert trainer_for(blobs, epochs=1).checkpoint_state()[1]["train_state"]["elapsed_seconds"] == 0
    saved["train_state"].update(elapsed_seconds=1000.0, epoch=0, stop_reason=None)
    again = trainer_for(blobs, epochs=3, max_seconds=1000.0)
    again.restore(tensors, saved)
    state = again.fit()
    assert state.stop_reason == "reached train.max_seconds=1000"
    assert state.step == trainer.state.step


def test_a_restored_state_stopped_early_trains_no_more_and_a_larger_cap_goes_on(blobs) -> None:
    from tests_support import trainer_for

    trainer = trainer_for(blobs, epochs=1, max_steps=5)
    assert trainer.fit().stop_reason == "reached train.max_steps=5"
    tensors, saved = trainer.checkpoint_state()
    longer = trainer_for(blobs, epochs=1, max_steps=8)
    longer.restore(tensors, saved)
    assert (longer.fit().step, longer.state.stop_reason) == (8, "reached train.max_steps=8")
    saved["train_state"]["stop_reason"] = "early stopping: no better val loss for 2 epochs"
    saved["train_state"]["stopped_by_callback"] = True  # a callback's stop is final
    stopped = trainer_for(blobs, epochs=3)
    stopped.restore(tensors, saved)
    assert stopped.fit().step == 5 and stopped.state.stop_reason.startswith("early stopping")


def test_runs_written_by_checkpoint_version_1_resume_bitwise(tmp_path) -> None:
    """The stopped fixture run resumes to the finished one's weights; the finished one stays."""
    names, processes, server = ["digits-cnn-v0", "digits-cnn-v0-stopped"], [], ForkServer(tmp_path)
    try:
        for name in names:  # separate processes (default threads), side by side
            shutil.copytree(FIXTURES / name, tmp_path / name)
            processes.append(server.run("resume", str(tmp_path / name), "--quiet"))
        for name, process in zip(names, processes, strict=True):
            finished(process, name)
    finally:
        server.close()
    expected = load_file(str(FIXTURES / "digits-cnn-v0" / "model.safetensors"))
    for name in ["digits-cnn-v0", "digits-cnn-v0-stopped"]:
        resumed = load_file(str(tmp_path / name / "model.safetensors"))
        assert resumed.keys() == expected.keys(), name
        assert all(torch.equal(resumed[key], value) for key, value in expected.items()), name
        assert json.loads((tmp_path / name / "run.json").read_text())["steps"] == 42


def test_a_diverging_run_keeps_its_last_finite_checkpoint_and_prints_the_doctor(
    tmp_path, capsys
) -> None:
    from fathom.cli import main
    from fathom.engine.checkpoint_files import load_checkpoint, non_finite

    arguments = ["train", "digits", "optim.lr=1e6", "train.checkpoint_every_steps=1"]
    assert main([*arguments, "--run-dir", str(tmp_path), "--name", "nan", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("fathom train: error: training diverged")
    assert "[non_finite]" in error and "first layer with a non-finite output" in error
    tensors, state = load_checkpoint(tmp_path / "nan" / "checkpoints" / "last.safetensors")
    assert state["train_state"]["step"] >= 1 and non_finite(tensors) == []
