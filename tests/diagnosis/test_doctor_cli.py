"""End to end: ``fathom train`` prints the doctor's verdict, ``fathom doctor RUN`` repeats it."""

from __future__ import annotations

import json

import pytest

import fathom
from fathom.cli import main

pytestmark = pytest.mark.slow


def test_train_then_doctor(tmp_path, capsys):
    arguments = ["train", "digits", "--model", "mlp", "--epochs", "3", "--run-dir", str(tmp_path),
                 "--name", "r", "--quiet", "schedule.name=constant", "optim.lr=0.002", "model.hidden=[64]",
                 "data.normalize=false", "train.threads=1"]  # fmt: skip
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "doctor:" in printed
    run = tmp_path / "r"
    assert (run / "diagnostics.jsonl").exists() and (run / "diagnosis.json").exists()
    assert "Diagnosis (the doctor)" in (run / "report.html").read_text()
    (run / "diagnostics.jsonl").write_text(
        "\n".join(
            line for line in (run / "diagnostics.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] != "data"
        ) + "\n"
    )  # fmt: skip
    assert main(["doctor", str(run)]) == 0  # data checks are recomputed from the dataset
    assert capsys.readouterr().out.startswith("doctor:")
    assert '"kind": "data"' not in (run / "diagnostics.jsonl").read_text()
    assert isinstance(fathom.doctor(run), list)
    assert main(["doctor", str(tmp_path / "missing")]) == 2
