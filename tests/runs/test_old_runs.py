"""Run folders written before the application-layer change still load, evaluate and resume
bitwise (fixtures made with Fathom at commit 788df4e: a finished run, and the same run stopped
after its first epoch)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

import fathom
from fathom.cli import main
from fathom.engine.checkpoint import load_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs-v0"


def copy_of(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def test_an_old_run_loads_evaluates_and_predicts(tmp_path, capsys):
    folder = copy_of("digits-cnn-v0", tmp_path)
    run = fathom.load(folder)
    metrics = run.evaluate("test")
    assert abs(metrics["accuracy"] - 0.2924791086350975) < 1e-9  # as written in its run.json
    assert main(["eval", str(folder)]) == 0
    image = tmp_path / "digit.npy"
    import numpy as np

    np.save(image, np.zeros((1, 8, 8), dtype=np.float32))
    assert main(["predict", str(folder), str(image), "--top", "2"]) == 0
    assert "digit.npy:" in capsys.readouterr().out


def test_an_old_stopped_run_resumes_to_the_uninterrupted_weights(tmp_path):
    folder = copy_of("digits-cnn-v0-stopped", tmp_path)
    assert main(["resume", str(folder), "--quiet"]) == 0
    resumed, _ = load_checkpoint(folder / "model.safetensors")
    uninterrupted, _ = load_checkpoint(FIXTURES / "digits-cnn-v0" / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in resumed)
