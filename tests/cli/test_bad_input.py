"""Every user error: one line on stderr, exit status 2, no traceback, existing runs untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fathom.cli import main


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    assert (
        main(["train", "--epochs", "1", "--run-dir", str(folder), "--quiet", "model.name=mlp"]) == 0
    )
    return next(folder.iterdir())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def check_error(capsys, arguments: list[str], expected: str) -> None:
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert expected in error, error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["train", "mnits"], "unknown dataset 'mnits' (did you mean 'mnist'?)"),
        (["train", "--model", "resnet9"], "unknown model 'resnet9' (did you mean 'resnet8'?)"),
        (
            ["train", "train.epochz=3"],
            "unknown config key 'train.epochz' (did you mean 'train.epochs'?)",
        ),
        (["train", "train.epochs=many"], "config key 'train.epochs'"),
        (["train", "optim.lr=-1"], "config key 'optim.lr': input should be greater than 0"),
        (["train", "model.chanels=[4]"], "has no option 'chanels' (did you mean 'channels'?)"),
        (["train", "missing.yaml"], "config file not found: missing.yaml"),
        (["train", "missing.csv"], "CSV file not found"),
        (["train", "train.precision=fp16", "train.device=cpu"], "fp16 needs a CUDA device"),
        (["eval", "no-such-run"], "not a Fathom run folder"),
        (["train", "task.name=clasification"], "unknown task 'clasification' (did you mean"),
        (["train", "task.smoothing=0.1"], "has no option 'smoothing'"),
    ],
)
def test_bad_arguments(capsys, tmp_path, monkeypatch, arguments, expected):
    monkeypatch.chdir(tmp_path)
    check_error(capsys, arguments, expected)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_damaged_checkpoints_are_refused_and_left_alone(capsys, finished_run, tmp_path):
    weights = finished_run / "model.safetensors"
    good = weights.read_bytes()
    before = snapshot(finished_run)
    try:
        weights.write_bytes(good[: len(good) // 2])
        check_error(capsys, ["eval", str(finished_run)], "truncated")
        altered = bytearray(good)
        altered[-3] ^= 0x55
        weights.write_bytes(bytes(altered))
        check_error(capsys, ["predict", str(finished_run), str(weights)], "altered")
        weights.write_bytes(b"not a checkpoint at all")
        check_error(capsys, ["resume", str(finished_run / "nothing")], "not a Fathom run folder")
    finally:
        weights.write_bytes(good)
    assert snapshot(finished_run) == before


def test_prediction_inputs_that_cannot_be_read(capsys, finished_run, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    check_error(capsys, ["predict", str(finished_run), str(broken)], "broken.png")
    check_error(capsys, ["predict", str(finished_run), str(tmp_path / "absent.png")], "absent.png")


def test_corrupt_csv_rows_name_row_and_column(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = tmp_path / "table.csv"
    table.write_text(
        "a,b,label\n1,2,x\n3,4,y\n5,oops,x\n" + "".join(f"{i},{i},x\n" for i in range(20))
    )
    check_error(capsys, ["train", "table.csv", "data.target=label"], "table.csv line 4, column 'b'")
    table.write_text("a,b,label\n1,2,x\n3,4\n")
    check_error(capsys, ["train", "table.csv", "data.target=label"], "table.csv line 3")


def test_undecodable_image_in_a_folder_is_named(capsys, tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for index in range(3):
            Image.new("L", (8, 8), color=index * 40).save(
                tmp_path / "images" / label / f"{index}.png"
            )
    (tmp_path / "images" / "b" / "bad.png").write_bytes(b"garbage")
    check_error(capsys, ["train", "images"], "bad.png")


def test_nan_loss_names_the_step_and_keeps_the_checkpoint(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arguments = ["train", "optim.lr=1e30", "optim.name=sgd", "train.checkpoint_every_steps=1"]
    assert main([*arguments, "--quiet"]) == 2
    error_line, *doctor = capsys.readouterr().err.splitlines()
    assert "at step" in error_line and "Traceback" not in error_line
    assert doctor[0].startswith("doctor: ") and "[non_finite]" in "\n".join(doctor)
    run = next((tmp_path / "runs").iterdir())
    assert '"status": "failed"' in (run / "run.json").read_text()
    from fathom.engine.checkpoint_files import load_checkpoint

    tensors, _ = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert all(
        t.isfinite().all()
        for key, t in tensors.items()
        if key.startswith("model/") and t.is_floating_point()
    )


def test_real_process_exit_status_and_single_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fathom.cli", "train", "cifar11"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,  # only stops a hang
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "cifar10" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "fathom.cli", "trian"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,  # only stops a hang
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_generate_refuses_a_run_that_is_not_generative(capsys, finished_run):
    before = snapshot(finished_run)
    check_error(capsys, ["generate", str(finished_run), "--n", "4"], "not a generative model")
    assert snapshot(finished_run) == before


def test_resume_without_a_checkpoint_starts_the_run_again(finished_run, tmp_path):
    """A run stopped before its first checkpoint trains again from the start, with its seed:
    it ends with the weights of the uninterrupted run."""
    import shutil

    from fathom.engine.checkpoint_files import load_checkpoint

    copy = tmp_path / "early"
    shutil.copytree(finished_run, copy)
    shutil.rmtree(copy / "checkpoints")
    (copy / "model.safetensors").unlink()
    assert main(["resume", str(copy), "--quiet"]) == 0
    again, _ = load_checkpoint(copy / "model.safetensors")
    original, _ = load_checkpoint(finished_run / "model.safetensors")
    assert again.keys() == original.keys()
    assert all(torch.equal(again[key], original[key]) for key in original)
