"""End-to-end: a tiny character LM on Tiny Shakespeare, generation, and text classifiers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import fathom
from fathom.cli import main
from fathom.errors import ConfigError

pytestmark = pytest.mark.slow

TINY_LM = [
    "data.max_chars=60000", "data.context=32", "data.stride=16", "data.batch_size=32",
    "model.dim=32", "model.depth=2", "model.heads=2", "model.context=32", "train.epochs=1",
    "train.precision=fp32", "task.sample_tokens=20",
]  # fmt: skip


@pytest.fixture(scope="module")
def char_lm_run(shared_datasets, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("charlm")
    code = main([
        "train", "tinyshakespeare", "--data-dir", str(shared_datasets), "--run-dir", str(folder),
        "--quiet", *TINY_LM,
    ])  # fmt: skip
    assert code == 0
    (run,) = list(folder.iterdir())
    return run


def test_char_lm_trains_and_reports(char_lm_run) -> None:
    record = json.loads((char_lm_run / "run.json").read_text())
    assert record["status"] == "completed" and record["task"] == "language_model"
    assert record["test"]["loss"] < 3.0  # uniform over 69 tokens is 4.23
    assert record["test"]["bits_per_character"] == pytest.approx(
        record["test"]["loss"] / 0.6931, rel=1e-3
    )
    samples = json.loads((char_lm_run / "sections" / "text_samples.json").read_text())
    assert samples["rows"] and (char_lm_run / "plots" / "attention.png").is_file()
    report = (char_lm_run / "report.html").read_text()
    assert "Generated text over training" in report and "Attention map" in report


def test_generate_continues_the_prompt(char_lm_run, capsys) -> None:
    arguments = ["generate", str(char_lm_run), "--prompt", "ROMEO:", "--max-tokens", "20"]
    assert main([*arguments, "--top-k", "5", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    text = printed.split("\nwrote ")[0]
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 20
    assert (char_lm_run / "generated" / "sample-seed1.txt").read_text() == text
    assert main([*arguments, "--top-k", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().out == printed  # seeded: the same text again


def test_generate_bad_requests_are_one_line_errors(char_lm_run, capsys) -> None:
    assert main(["generate", str(char_lm_run), "--prompt", "ROMEO~€"]) == 2
    error = capsys.readouterr().err
    assert "never seen in training: '~', '€'" in error and error.count("\n") == 1
    assert main(["generate", str(char_lm_run), "--prompt", "A", "--top-p", "2"]) == 2
    assert "top_p" in capsys.readouterr().err
    assert main(["generate", str(char_lm_run), "--steps", "3"]) == 2
    assert "has no option 'steps'" in capsys.readouterr().err


def test_sentiment_classifier_trains_briefly(shared_datasets, tmp_path) -> None:
    code = main([
        "train", "sentiment", "--data-dir", str(shared_datasets), "--run-dir", str(tmp_path),
        "--quiet", "train.epochs=3",
    ])  # fmt: skip
    assert code == 0
    (run,) = list(tmp_path.iterdir())
    record = json.loads((run / "run.json").read_text())
    assert record["model"]["name"] == "transformer_encoder"
    assert record["test"]["accuracy"] > 0.65  # two balanced classes: chance is 0.5
    assert (run / "plots" / "attention.png").stat().st_size > 5000
    assert "Attention map" in (run / "report.html").read_text()


def test_text_csv_train_and_predict(tmp_path, capsys) -> None:
    rows = ["review,label"]
    for index in range(120):
        good = index % 2 == 0
        rows.append(
            f"{'a great and lovely' if good else 'an awful and boring'} film {index},{'pos' if good else 'neg'}"
        )
    (tmp_path / "reviews.csv").write_text("\n".join(rows) + "\n")
    code = main([
        "train", str(tmp_path / "reviews.csv"), "data.text_column=review", "data.target=label",
        "--model", "transformer_encoder", "model.dim=32", "model.heads=2", "--epochs", "4",
        "--lr", "0.003", "--batch-size", "16", "--run-dir", str(tmp_path / "runs"), "--quiet",
    ])  # fmt: skip
    assert code == 0
    (run,) = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "run.json").read_text())["test"]["accuracy"] >= 0.9
    (tmp_path / "new.txt").write_text("a lovely film\nan awful film\n")
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "new.txt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(": ")[1].startswith("pos") and lines[1].split(": ")[1].startswith("neg")

    # texts as arguments, beside a file; the same probabilities as the file's lines
    output = tmp_path / "texts.csv"
    arguments = [
        "a lovely film",
        str(tmp_path / "new.txt"),
        "an awful film",
        "--output",
        str(output),
    ]
    assert main(["predict", str(run), *arguments]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("a lovely film: pos") and lines[3].startswith("an awful film: neg")
    rows = list(csv.reader(output.open()))
    assert [row[0] for row in rows[1:]] == ["a lovely film", f"{tmp_path / 'new.txt'}:1",
                                            f"{tmp_path / 'new.txt'}:2", "an awful film"]  # fmt: skip
    assert rows[1][1:] == rows[2][1:] and rows[3][1:] == rows[4][1:]
    loaded = fathom.load(run)
    torch.testing.assert_close(
        loaded.predict(texts=["a lovely film", "an awful film"]),
        loaded.predict([tmp_path / "new.txt"]),
    )
    # a missing file is not taken for a text; a text for a model of another kind is refused
    assert main(["predict", str(run), str(tmp_path / "missing.txt")]) == 2
    assert "input file not found" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="predict takes inputs"):
        loaded.predict()


def test_a_named_text_column_routes_a_table_to_text_csv() -> None:
    from fathom.cli.options import table_dataset

    assert table_dataset("reviews.csv", ["data.text_column=review"]) == {"name": "text_csv"}
    assert table_dataset("reviews.tsv", ["data.text_column=review"]) == {"name": "text_csv"}
    assert table_dataset("table.tsv", ["data.target=y"]) == {"name": "csv", "delimiter": "\t"}
    assert table_dataset("table.csv", []) == {"name": "csv"}
