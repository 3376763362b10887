"""Sequence-to-sequence end to end from the CLI: train on dates, report exact match, translate."""

from __future__ import annotations

import json

import pytest

from fathom.cli import main


@pytest.fixture(scope="module")
def dates_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    arguments = ["train", "dates", "--epochs", "2", "--run-dir", str(folder), "--quiet",
                 "data.size=3000", "data.val_size=200", "data.test_size=200",
                 "data.batch_size=32", "model.hidden_size=64", "optim.lr=0.01"]  # fmt: skip
    assert main(arguments) == 0
    return next(folder.iterdir())


@pytest.mark.slow
def test_train_dates_reports_exact_match(dates_run, capsys) -> None:
    record = json.loads((dates_run / "run.json").read_text())
    assert record["task"] == "seq2seq"
    assert 0.0 <= record["test"]["exact_match"] <= record["test"]["token_accuracy"] <= 1.0
    assert record["test"]["exact_match"] > 0.3  # held-out dates right after two short epochs
    assert "Decoded validation examples" in (dates_run / "report.html").read_text()


@pytest.mark.slow
def test_predict_translates_texts_greedy_and_with_a_beam(dates_run, capsys, tmp_path) -> None:
    output = tmp_path / "out.csv"
    texts = ["12 March 2021", "03/12/21"]
    assert main(["predict", str(dates_run), *texts, "--output", str(output)]) == 0
    greedy = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in greedy] == texts
    assert main(["predict", str(dates_run), *texts, "--beam", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == greedy
    assert output.read_text().splitlines()[0] == "input,prediction"


@pytest.mark.slow
def test_bad_seq2seq_inputs_are_one_line_errors(dates_run, capsys) -> None:
    assert main(["predict", str(dates_run), "12 Mär 2021"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "'ä' are not in the vocabulary" in error
    assert main(["train", "dates", "task.beam_size=0", "--quiet"]) == 2
    assert "task.beam_size must be a positive integer" in capsys.readouterr().err


@pytest.mark.slow
def test_transformer_seq2seq_report_shows_cross_attention(tmp_path) -> None:
    arguments = ["train", "dates", "--model", "transformer_seq2seq", "--epochs", "2", "--quiet",
                 "--run-dir", str(tmp_path), "data.size=1500", "data.val_size=100",
                 "data.test_size=100", "data.batch_size=32", "model.dim=32", "model.heads=2",
                 "optim.lr=0.003", "model.dropout=0.0"]  # fmt: skip
    assert main(arguments) == 0
    run = next(tmp_path.iterdir())
    assert (run / "plots" / "attention.png").stat().st_size > 5000
    assert "which source characters the decoder looks at" in (run / "report.html").read_text()
