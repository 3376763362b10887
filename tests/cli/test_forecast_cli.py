"""Forecasting end to end from the CLI: a statsmodels series and a CSV series, with baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fathom.cli import main


@pytest.mark.slow
def test_train_sunspots_reports_the_model_beside_the_baselines(tmp_path, capsys) -> None:
    arguments = ["train", "sunspots", "--epochs", "2", "--run-dir", str(tmp_path), "--quiet",
                 "model.hidden_size=16"]  # fmt: skip
    assert main(arguments) == 0
    assert "mase" in capsys.readouterr().out
    run = next(tmp_path.iterdir())
    record = json.loads((run / "forecast.json").read_text())
    assert set(record["errors"]) == {"neural model", "naive", "seasonal naive (m=11)", "ARIMA"}
    test = json.loads((run / "run.json").read_text())["test"]
    assert record["errors"]["neural model"]["mase"] == pytest.approx(test["mase"], rel=1e-5)
    assert (run / "plots" / "forecast.png").is_file()
    assert "Forecast vs baselines" in (run / "report.html").read_text()


@pytest.mark.slow
def test_train_a_csv_series(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    values = 10 + np.sin(np.arange(150) / 3.0)
    (tmp_path / "load.csv").write_text(
        "t,load\n" + "".join(f"{i},{v:.4f}\n" for i, v in enumerate(values))
    )
    arguments = ["train", "load.csv", "data.name=series", "data.column=load", "data.input_length=12",
                 "data.horizon=3", "model.name=lstm", "--epochs", "1", "--quiet"]  # fmt: skip
    assert main(arguments) == 0
    run = next((tmp_path / "runs").iterdir())
    assert json.loads((run / "run.json").read_text())["task"] == "forecast"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["data.column=lod"], "no column 'lod' (data.column) (did you mean 'load'?)"),
        (["data.column=load", "data.input_length=40"], "too short for the window: 30 values"),
    ],
)
def test_bad_series_inputs_are_one_line_errors(tmp_path, monkeypatch, capsys, overrides, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "load.csv").write_text("t,load\n" + "".join(f"{i},{i % 5}\n" for i in range(30)))
    assert main(["train", "load.csv", "data.name=series", *overrides, "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and expected in error, error
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
