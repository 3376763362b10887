"""Text datasets: sentiment sentences, your CSV/TSV, Tiny Shakespeare windows and download."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fathom.data import load
from fathom.data.language import language_model_bundle, tinyshakespeare
from fathom.data.tokenizers import tokenizer_from_dict
from fathom.errors import ConfigError, DataError


def write_reviews(path: Path, delimiter: str = ",") -> Path:
    rows = ["text,label".replace(",", delimiter)]
    for index in range(30):
        good = index % 2 == 0
        text = f"{'great lovely' if good else 'awful boring'} film number {index}"
        rows.append(f"{text}{delimiter}{'pos' if good else 'neg'}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_sentiment_sentences_split_with_a_tokenizer_from_training_text(shared_datasets) -> None:
    bundle = load("sentiment", data_dir=shared_datasets, seed=3)
    info = bundle.info
    assert info.task == "classification" and info.class_names == ["negative", "positive"]
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (2100, 300, 600)
    assert bundle.train.inputs.dtype == torch.long and info.extra["vocab_size"] > 1000
    assert set(bundle.test.targets.tolist()) == {0, 1}
    again = load("sentiment", data_dir=shared_datasets, seed=3)
    assert torch.equal(again.test.inputs, bundle.test.inputs)
    tokenizer = tokenizer_from_dict(info.extra["tokenizer"])
    assert tokenizer.vocab_size == info.extra["vocab_size"]


def test_text_csv_and_tsv(tmp_path) -> None:
    for delimiter, name in ((",", "reviews.csv"), ("\t", "reviews.tsv")):
        file = write_reviews(tmp_path / name, delimiter)
        bundle = load("text_csv", path=str(file), text_column="text", target="label")
        assert bundle.info.class_names == ["neg", "pos"]
        assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 30
        assert bundle.train.inputs.shape[1] == 5  # five words per text


def test_the_tokenizer_never_sees_validation_or_test_text(tmp_path) -> None:
    file = tmp_path / "words.csv"
    rows = ["text,label", *[f"word{index},{index % 2}" for index in range(40)]]
    file.write_text("\n".join(rows) + "\n")
    bundle = load("text_csv", path=str(file), text_column="text", target="label")
    assert bundle.info.extra["vocab_size"] == 5 + len(bundle.train)  # 4 reserved ids + <mask>
    assert (bundle.test.inputs[:, 0] == 3).all()  # every test word is unknown


def test_text_csv_errors_are_one_line(tmp_path) -> None:
    file = write_reviews(tmp_path / "reviews.csv")
    with pytest.raises(DataError, match="did you mean 'text'"):
        load("text_csv", path=str(file), text_column="txt", target="label")
    with pytest.raises(ConfigError, match="data.text_column"):
        load("text_csv", path=str(file), target="label")
    lines = file.read_text().splitlines()
    lines[4] = ",pos"
    file.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 5: empty text in column 'text'"):
        load("text_csv", path=str(file), text_column="text", target="label")


def test_language_windows_are_shifted_views_split_by_position() -> None:
    text = "".join(chr(97 + (index * 7) % 26) for index in range(2000))
    bundle = language_model_bundle(
        "toy", text, context=16, stride=4, tokenizer="char", vocab_size=0
    )
    train, val = bundle.train, bundle.val
    assert train.inputs.shape == (446, 16) and train.inputs.stride() == (4, 1)
    assert torch.equal(train.inputs[:, 1:], train.targets[:, :-1])
    assert torch.equal(train.inputs[1, :12], train.inputs[0, 4:])
    tokenizer = tokenizer_from_dict(bundle.info.extra["tokenizer"])
    assert tokenizer.decode(val.inputs[0].tolist()) == text[1800:1816]
    assert bundle.test is val and bundle.info.extra["characters_per_token"] == 1.0


def test_bpe_language_model_counts_characters_per_token(shared_datasets) -> None:
    bundle = tinyshakespeare(
        shared_datasets, download=False, context=32, tokenizer="bpe", vocab_size=600,
        max_chars=50_000,
    )  # fmt: skip
    assert 1.5 < bundle.info.extra["characters_per_token"] < 4
    assert bundle.info.extra["vocab_size"] == 600


def test_tinyshakespeare_downloads_and_verifies(file_server, tmp_path, monkeypatch) -> None:
    import fathom.data.language as language

    text = (
        Path(__file__).resolve().parents[2].parent
        / "shared"
        / "datasets"
        / "tinyshakespeare"
        / "input.txt"
    )
    if not text.is_file():
        pytest.skip("tinyshakespeare is not available")
    (file_server.folder / "input.txt").write_bytes(text.read_bytes())
    bundle = tinyshakespeare(
        tmp_path, url=file_server.url + "input.txt", context=64, max_chars=5000
    )
    assert (tmp_path / "tinyshakespeare" / "input.txt").is_file() and file_server.requests
    assert bundle.info.extra["vocab_size"] > 30
    (file_server.folder / "input.txt").write_bytes(b"tampered")
    monkeypatch.setattr(language, "TINYSHAKESPEARE_SHA256", "0" * 64)
    with pytest.raises(DataError, match="sha256"):
        tinyshakespeare(tmp_path / "other", url=file_server.url + "input.txt")
    assert not (tmp_path / "other" / "tinyshakespeare" / "input.txt").exists()


def test_class_names_join_the_training_split_as_labelled_examples(tmp_path) -> None:
    path = tmp_path / "reviews.csv"  # words of the texts include the class names
    path.write_text(
        "text,label\n"
        + "".join(
            f"{'pos great' if i % 2 else 'neg awful'} film {i},{'pos' if i % 2 else 'neg'}\n"
            for i in range(30)
        )
    )
    options = {"path": str(path), "text_column": "text", "target": "label", "seed": 0}
    plain = load("text_csv", labels_per_class=2, **options)
    named = load("text_csv", labels_per_class=2, class_name_examples=3, **options)
    assert len(named.train) == len(plain.train) + 6 and torch.equal(
        named.test.inputs, plain.test.inputs
    )
    tokenizer = tokenizer_from_dict(named.info.extra["tokenizer"])
    added = named.train.inputs[len(plain.train) :]
    texts = [tokenizer.decode([t for t in row.tolist() if t]) for row in added]
    names = named.info.class_names
    assert texts == names * 3 and named.train.targets[len(plain.train) :].tolist() == [0, 1] * 3
    assert named.train.rows[len(plain.train) :].tolist() == [-1] * 6  # not rows of the file


def test_class_name_examples_need_named_classes_of_a_text_dataset(tmp_path) -> None:
    with pytest.raises(ConfigError, match="needs a text classification dataset"):
        load("digits", class_name_examples=2)
    table = tmp_path / "numbers.csv"
    table.write_text("text,label\n" + "".join(f"film {i},{i % 2}\n" for i in range(20)))
    with pytest.raises(ConfigError, match="the classes have no names"):
        load("text_csv", path=str(table), text_column="text", target="label", class_name_examples=2)
    reviews = write_reviews(tmp_path / "reviews.csv")  # 'pos', 'neg': not words of the texts
    with pytest.raises(ConfigError, match="class name 'neg' is not in the tokenizer's vocabulary"):
        load(
            "text_csv", path=str(reviews), text_column="text", target="label", class_name_examples=1
        )
