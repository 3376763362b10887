"""End to end: masked-token pretraining on the sentiment sentences, fine-tuning from it with its
tokenizer, loading in a fresh process, exact resume mid-pretraining, and bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import fathom
from fathom.api import resume
from fathom.cli import main
from fathom.data.tokenizers import encode_texts, tokenizer_from_dict
from tests_support import InterruptAt, predict_in_fresh_process

TINY = [
    "data.sources=[amazon]", "model.dim=16", "model.depth=1", "model.heads=2",
    "train.diagnostics=false", "data.batch_size=32",
]  # fmt: skip


@pytest.fixture(scope="module")
def runs(shared_datasets, tmp_path_factory) -> Path:
    """A pretraining run (``mlm``) and a fine-tuning run from it (``ft``), through the CLI."""
    folder = tmp_path_factory.mktemp("mlm")
    where = ["--data-dir", str(shared_datasets), "--run-dir", str(folder), "--quiet"]
    pretrain = ["train", "sentiment", "task.name=masked_lm", "train.max_steps=4", *TINY]
    assert main([*pretrain, *where, "--name", "mlm"]) == 0
    finetune = ["finetune", str(folder / "mlm"), "sentiment", "train.max_steps=4", *TINY[:1]]
    assert main([*finetune, "train.diagnostics=false", *where, "--name", "ft"]) == 0
    return folder


def record(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def test_pretraining_reports_masked_token_metrics(runs: Path) -> None:
    pretrained = record(runs / "mlm")
    assert pretrained["status"] == "completed" and pretrained["steps"] == 4
    assert pretrained["task"] == "masked_lm" and not pretrained["classifier"]
    assert set(pretrained["test"]) == {"loss", "perplexity", "accuracy"}
    assert pretrained["lineage"]["base"]["name"] == "transformer_encoder"  # a plain encoder
    weights = load_file(str(runs / "mlm" / "model.safetensors"))
    assert "model/head.1.weight" in weights and not any("mlm" in name for name in weights)


def test_fine_tuning_reuses_the_source_tokenizer_and_all_its_weights(runs: Path) -> None:
    source, tuned = record(runs / "mlm"), record(runs / "ft")
    assert tuned["data"]["extra"]["tokenizer"] == source["data"]["extra"]["tokenizer"]
    assert f"tokenizer: run:{runs / 'mlm'}" in (runs / "ft" / "config.yaml").read_text()
    assert tuned["transfer"]["load_report"].endswith("loaded 20 of 20 tensors")
    assert tuned["test"]["accuracy"] >= 0 and tuned["task"] == "classification"


def test_the_fine_tuned_run_predicts_the_same_in_a_fresh_process(runs: Path) -> None:
    run = fathom.load(runs / "ft")
    tokenizer = tokenizer_from_dict(run.info.extra["tokenizer"])
    texts = ["great phone, works well", "the battery died after a day", "not bad at all"]
    inputs = encode_texts(tokenizer, texts, 64)
    expected = run.predict(inputs)
    fresh = predict_in_fresh_process(runs / "ft", inputs, runs)
    assert torch.allclose(fresh, expected, atol=1e-6)


def test_an_interrupted_pretraining_resumes_bitwise_exactly(shared_datasets, tmp_path) -> None:
    overrides = [
        "task.name=masked_lm", "train.max_steps=6", "train.checkpoint_every_steps=2",
        f"run.dir={tmp_path}", "run.progress=none", f"data.data_dir={shared_datasets}", *TINY,
    ]  # fmt: skip
    whole = fathom.fit(data="sentiment", overrides=[*overrides, "run.name=whole"], report=False)
    with pytest.raises(KeyboardInterrupt):
        fathom.fit(
            data="sentiment", overrides=[*overrides, "run.name=cut"], callbacks=[InterruptAt(3)]
        )
    resumed = resume(tmp_path / "cut", progress="none")
    expected = load_file(str(whole.path / "model.safetensors"))
    for name, tensor in load_file(str(resumed.path / "model.safetensors")).items():
        assert torch.equal(tensor, expected[name]), name


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["digits", "task.name=masked_lm"], "needs a text dataset"),
        (["sentiment", "task.name=masked_lm", "model.name=mlp", TINY[0]], "transformer_encoder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(shared_datasets, tmp_path, capsys, arguments, message):
    where = ["--data-dir", str(shared_datasets), "--run-dir", str(tmp_path), "--quiet"]
    assert main(["train", *arguments, "train.max_steps=2", *where]) == 2
    error = capsys.readouterr().err
    assert message in error and error.strip().count("\n") == 0
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_unlabelled_text_csv_pretrains_and_is_refused_for_classification(tmp_path, capsys):
    words = ["good", "bad", "fine", "slow", "quick", "loud", "quiet", "cheap"]
    rows = [f"{words[i % 8]} and {words[(i * 3) % 8]} phone number {i % 5}" for i in range(40)]
    (tmp_path / "notes.csv").write_text("text\n" + "\n".join(rows) + "\n")
    data = [f"data.path={tmp_path / 'notes.csv'}", "data.text_column=text"]
    small = [*TINY[1:], "train.max_steps=2", "--run-dir", str(tmp_path / "runs"), "--quiet"]
    assert main(["train", "text_csv", "task.name=masked_lm", *data, *small, "--name", "u"]) == 0
    assert record(tmp_path / "runs" / "u")["test"]["accuracy"] >= 0
    capsys.readouterr()
    assert main(["train", "text_csv", *data, *small]) == 2
    assert "classification needs at least two classes" in capsys.readouterr().err
