"""End-to-end: the `fathom` command on real data (digits embedded; MNIST from ../shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fathom
from fathom.cli import main
from fathom.errors import ConfigError

pytestmark = pytest.mark.slow


def run_cli(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fathom.cli", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1800,  # only stops a hang
    )


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """`fathom train` with no argument: the embedded default, as a user runs it."""
    folder = tmp_path_factory.mktemp("cli")
    result = run_cli("train", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "run folder:" in result.stdout and "report:" in result.stdout
    runs = list((folder / "runs").iterdir())
    assert len(runs) == 1
    return runs[0]


def test_default_train_reaches_98_percent(digits_run):
    record = json.loads((digits_run / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["test"]["accuracy"] >= 0.98
    assert (digits_run / "report.html").stat().st_size > 10_000
    assert list((digits_run / "plots").glob("*.png"))


def test_eval_predict_report(digits_run, tmp_path, capsys):
    assert main(["eval", str(digits_run)]) == 0
    assert "test accuracy:" in capsys.readouterr().out
    image = (np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "digit.png")
    np.save(tmp_path / "digit.npy", image.astype(np.float32) / 255)
    output = tmp_path / "predictions.csv"
    assert (
        main(
            [
                "predict",
                str(digits_run),
                str(tmp_path / "digit.png"),
                str(tmp_path / "digit.npy"),
                "--top",
                "3",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and printed[0].startswith(str(tmp_path / "digit.png"))
    assert output.read_text().splitlines()[0] == "input,prediction,probability"
    assert main(["report", str(digits_run)]) == 0
    assert capsys.readouterr().out.strip().endswith("report.html")
    # a model trained on images takes no texts; a word is a file name it cannot find
    assert main(["predict", str(digits_run), "seven"]) == 2
    assert "input file not found: seven" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="trained on digits, not on texts"):
        fathom.load(digits_run).predict(texts=["seven"])


def test_list_and_help(capsys):
    assert main(["list", "models"]) == 0
    assert "resnet8" in capsys.readouterr().out
    assert main(["list", "datasets"]) == 0
    assert "mnist" in capsys.readouterr().out
    for command in ("train", "eval", "predict", "resume", "report", "list"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0


def test_train_mnist_resnet8_from_shared_data(shared_datasets, tmp_path, capsys):
    code = main(
        [
            "train",
            "mnist",
            "--model",
            "resnet8",
            "--epochs",
            "1",
            "--data-dir",
            str(shared_datasets),
            "--run-dir",
            str(tmp_path),
            "--quiet",
            "--no-report",
            "data.limit=3000",
        ]
    )
    assert code == 0, capsys.readouterr().err
    run = next(tmp_path.iterdir())
    record = json.loads((run / "run.json").read_text())
    assert record["model"]["name"] == "resnet8" and record["data"]["input_shape"] == [1, 28, 28]
    assert record["test"]["accuracy"] > 0.15  # above chance (0.10) after one short epoch
    # --no-report: no report.html nor its plots (fathom report writes them later), said nowhere
    assert not (run / "report.html").exists() and not (run / "plots" / "loss.png").exists()
    assert "report: false" in (run / "config.yaml").read_text()
    assert "report:" not in capsys.readouterr().out


def test_yaml_config_with_overrides(tmp_path, capsys):
    config = tmp_path / "my-config.yaml"
    config.write_text(
        "data:\n  name: digits\nmodel:\n  name: mlp\n  hidden: [64]\ntrain:\n  epochs: 2\noptim:\n  lr: 0.01\n"
    )
    assert (
        main(["train", str(config), "train.seed=7", f"run.dir={tmp_path / 'runs'}", "--quiet"]) == 0
    )
    run = next((tmp_path / "runs").iterdir())
    saved = (run / "config.yaml").read_text()
    assert "seed: 7" in saved and "hidden:\n  - 64" in saved and "epochs: 2" in saved


def test_csv_regression_train_and_predict_rows(tmp_path, capsys):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 3))
    target = features @ np.array([2.0, -1.0, 0.5]) + 0.05 * rng.normal(size=300)
    colour = rng.choice(["red", "blue"], size=300)
    lines = ["x1,x2,x3,colour,price"] + [
        f"{a:.4f},{b:.4f},{c:.4f},{k},{t:.4f}"
        for (a, b, c), k, t in zip(features, colour, target, strict=True)
    ]
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    assert (
        main(
            [
                "train",
                str(tmp_path / "table.csv"),
                "data.target=price",
                "model.name=mlp",
                "--epochs",
                "30",
                "--lr",
                "0.01",
                "--run-dir",
                str(tmp_path / "runs"),
                "--quiet",
            ]
        )
        == 0
    )
    run = next((tmp_path / "runs").iterdir())
    record = json.loads((run / "run.json").read_text())
    assert record["task"] == "regression" and record["test"]["r2"] > 0.9
    (tmp_path / "new.csv").write_text("x1,x2,x3,colour\n1,0,0,red\n0,1,0,green\n")
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "new.csv")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1] for line in printed] == ["1", "2"]
    assert abs(float(printed[0].split(": ")[1]) - 2.0) < 0.5
