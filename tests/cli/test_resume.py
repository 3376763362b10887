"""Kill real training processes with SIGKILL at random steps; resuming must give bitwise-equal weights."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

SETTINGS = [
    "train.epochs=4",
    "train.checkpoint_every_steps=5",
    "train.log_every_steps=1",
    "train.ema_decay=0.9",
    "model.dropout=0.3",
    "data.augment.flip=true",
    "data.augment.crop.padding=1",
    "train.threads=1",
    "--quiet",
]


def fathom(*arguments: str, cwd: Path) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "fathom.cli", *arguments],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


def steps_logged(run: Path) -> int:
    metrics = run / "metrics.jsonl"
    if not metrics.exists():
        return 0
    lines = [json.loads(line) for line in metrics.read_text().splitlines() if line.endswith("}")]
    return max((line["step"] for line in lines), default=0)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_resume_after_kill_at_random_steps_is_bitwise_exact(tmp_path):
    finished(fathom("train", *SETTINGS, "--run-dir", "runs", "--name", "reference", cwd=tmp_path))
    reference = weights(tmp_path / "runs" / "reference")
    steps_per_epoch = 21  # 1,294 digits training examples at batch 64 (last batch kept)
    total = 4 * steps_per_epoch
    rng = random.Random(int(time.time()))
    targets = [
        rng.randrange(6, steps_per_epoch),
        rng.randrange(steps_per_epoch + 1, 2 * steps_per_epoch),
        rng.randrange(2 * steps_per_epoch, total - 2),
    ]
    for index, target in enumerate(targets):
        run = tmp_path / "runs" / f"killed-{index}"
        process = fathom("train", *SETTINGS, "--run-dir", "runs", "--name", run.name, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while steps_logged(run) < target and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        assert not (run / "model.safetensors").exists(), (
            f"the run finished before the kill at step {target}"
        )
        killed_at = steps_logged(run)
        finished(fathom("resume", str(run), cwd=tmp_path))
        resumed = weights(run)
        assert resumed.keys() == reference.keys()
        for key, tensor in reference.items():
            assert torch.equal(resumed[key], tensor), (
                f"{key} differs after kill at step {killed_at}"
            )
        record = json.loads((run / "run.json").read_text())
        assert record["status"] == "completed" and record["steps"] == total
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [line["step"] for line in lines if line["kind"] == "train"] == list(
            range(1, total + 1)
        )
