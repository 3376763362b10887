"""Data the CLI must not take at face value: constant CSV columns, one class, non-finite inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fathom.cli import main
from fathom.data.vision import _digits_file


def _check_refused(capsys, arguments: list[str], expected: str) -> None:
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and expected in error and "Traceback" not in error, error


def test_digits_csv_with_constant_pixels_reports_a_sane_test_loss(tmp_path, capsys):
    table = np.loadtxt(_digits_file(), delimiter=",")
    header = ",".join([*(f"p{i}" for i in range(64)), "label"])
    rows = [",".join(str(int(value)) for value in row) for row in table]
    (tmp_path / "digits.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    arguments = [
        "train", str(tmp_path / "digits.csv"), "data.target=label", "model.name=mlp",
        "--epochs", "8", "--run-dir", str(tmp_path / "runs"), "--quiet",
    ]  # fmt: skip
    with pytest.warns(UserWarning, match=r"^columns p0, .*: the same value in every training"):
        assert main(arguments) == 0
    run = next((tmp_path / "runs").iterdir())
    test = json.loads((run / "run.json").read_text())["test"]
    assert test["accuracy"] > 0.9 and test["loss"] < 1.0  # was 97.5% and a loss of 390
    std = json.loads((run / "run.json").read_text())["data"]["normalization"]["std"]
    assert min(std) > 0.01 and 1.0 in std


def test_single_class_csv_is_refused_and_leaves_no_run_folder(tmp_path, capsys):
    table = tmp_path / "table.csv"
    table.write_text("a,b,label\n" + "".join(f"{i},{i % 5},yes\n" for i in range(40)))
    runs = tmp_path / "runs"
    _check_refused(
        capsys,
        ["train", str(table), "data.target=label", "model.name=mlp", "--run-dir", str(runs)],
        "table.csv: column 'label' holds one class, 'yes', in every row",
    )
    assert not runs.exists() or not any(runs.iterdir())


@pytest.fixture(scope="module")
def digits_mlp_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    arguments = ["train", "--epochs", "1", "--run-dir", str(folder), "--quiet", "model.name=mlp"]
    assert main(arguments) == 0
    return next(folder.iterdir())


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_predict_refuses_non_finite_npy(digits_mlp_run, tmp_path, capsys, value):
    images = np.zeros((3, 1, 8, 8), dtype=np.float32)
    images[2, 0, 4, 4] = value
    np.save(tmp_path / "bad.npy", images)
    _check_refused(
        capsys,
        ["predict", str(digits_mlp_run), str(tmp_path / "bad.npy")],
        "bad.npy: 1 of 192 values are NaN or infinite",
    )
    np.save(tmp_path / "good.npy", images[:2])
    assert main(["predict", str(digits_mlp_run), str(tmp_path / "good.npy")]) == 0
