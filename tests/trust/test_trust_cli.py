"""End to end: attack, calibrate and card on a tiny digits run; the card in Chromium; bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import fathom
from fathom.cli import main

TINY = ["model.name=cnn", "model.channels=[4,8]", "model.hidden=16", "train.epochs=1",
        "data.val_fraction=0.2", "run.progress=none", "train.diagnostics=false"]  # fmt: skip


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    arguments = ["train", "digits", "--run-dir", str(folder), "--name", "tiny", "run.card=true"]
    assert main([*arguments, *TINY]) == 0
    return folder / "tiny"


def check_error(capsys, arguments: list[str], expected: str) -> None:
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and expected in error and "Traceback" not in error, error


def test_attack_writes_examples_and_the_accuracy_table(digits_run: Path, tmp_path: Path) -> None:
    output = tmp_path / "attack"
    options = [
        "--eps",
        "0.2",
        "--steps",
        "3",
        "--restarts",
        "2",
        "--limit",
        "40",
        "--output",
        str(output),
    ]
    assert main(["attack", str(digits_run), *options]) == 0
    table = json.loads((output / "accuracy.json").read_text())
    assert table["examples"] == 40 and table["adversarial_accuracy"] <= table["clean_accuracy"]
    adversarial = torch.from_numpy(np.load(output / "adversarial.npy"))
    assert adversarial.shape == (40, 1, 8, 8) and float(adversarial.max()) <= 1
    assert (output / "examples.png").stat().st_size > 0


def test_calibrate_writes_a_run_whose_predictions_use_the_temperature(digits_run: Path) -> None:
    assert main(["calibrate", str(digits_run), "--name", "tiny-calibrated"]) == 0
    calibrated = digits_run.parent / "tiny-calibrated"
    record = json.loads((calibrated / "run.json").read_text())
    step = record["lineage"]["transforms"][-1]
    assert step["name"] == "temperature" and record["derived_from"] == str(digits_run)
    original, scaled = fathom.load(digits_run), fathom.load(calibrated)
    inputs = torch.randn(3, 1, 8, 8)
    expected = (original.model(inputs) / step["params"]["temperature"]).softmax(1)
    assert torch.allclose(scaled.predict(inputs), expected, atol=1e-5)
    assert (
        record["calibration"]["val"]["after"]["nll"]
        <= record["calibration"]["val"]["before"]["nll"]
    )


def test_card_writes_json_html_and_renders_in_chromium(digits_run: Path, tmp_path: Path) -> None:
    assert "Report card (trust)" in (digits_run / "report.html").read_text()  # run.card=true
    assert main(["card", str(digits_run), "--limit", "30", "--curve-points", "2"]) == 0
    card = json.loads((digits_run / "card" / "card.json").read_text())
    assert set(card) >= {"accuracy", "calibration", "robustness", "fairness", "size", "doctor"}
    assert card["calibration"]["after"]["nll"] <= card["calibration"]["before"]["nll"] + 1e-9
    assert len(card["robustness"]["corruptions"]["accuracy"]) == 11
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if browser is None:
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
               "--dump-dom", str(digits_run / "card" / "card.html")]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    assert "Calibration" in dom and "Robustness" in dom and "data:image/png;base64" in dom


def test_bad_input_is_one_line_with_exit_status_2(digits_run: Path, tmp_path: Path, capsys) -> None:
    check_error(capsys, ["attack", str(digits_run), "--eps", "-0.1"], "eps must be >= 0")
    table = tmp_path / "values.csv"
    table.write_text("x,y,sex\n" + "".join(f"{i},{i * 0.5},{'fm'[i % 2]}\n" for i in range(40)))
    check_error(capsys, ["train", str(table), "data.target=y", "data.sensitive=gender"],
                "no column 'gender'")  # fmt: skip
    runs = tmp_path / "runs"
    assert main(["train", str(table), "data.target=y", "data.task=regression", "--run-dir",
                 str(runs), "--name", "reg", "--epochs", "1", "--quiet"]) == 0  # fmt: skip
    check_error(capsys, ["attack", str(runs / "reg")], "needs a classifier run")
    check_error(capsys, ["card", str(runs / "reg")], "needs a classifier run")


def test_card_of_a_table_with_a_sensitive_column_has_fairness_by_group(tmp_path: Path) -> None:
    table = tmp_path / "people.csv"
    rows = [f"{i % 5},{i % 7},{'fm'[i % 2]},{int((i % 5) + (i % 2) > 2)}" for i in range(120)]
    table.write_text("a,b,sex,label\n" + "\n".join(rows) + "\n")
    runs = tmp_path / "runs"
    assert main(["train", str(table), "data.target=label", "data.sensitive=sex", "--run-dir",
                 str(runs), "--name", "people", "--epochs", "2", "--quiet"]) == 0  # fmt: skip
    assert main(["card", str(runs / "people")]) == 0
    card = json.loads((runs / "people" / "card" / "card.json").read_text())
    assert card["fairness"]["attribute"] == "sex" and set(card["fairness"]["by_group"]) == {
        "f",
        "m",
    }
    assert "not images" in card["robustness"]["note"]
