"""Tokenizers: round trips, reserved special ids, JSON serialisation, unknown characters."""

from __future__ import annotations

import json

import pytest

from fathom.data.tokenizers import (
    CharTokenizer,
    encode_texts,
    mask_token_id,
    special_token_ids,
    tokenizer_from_dict,
    train_tokenizer,
)
from fathom.errors import ConfigError, DataError

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Shall I compare thee to a summer's day?\nThou art more lovely.",
    "Pack my box with five dozen liquor jugs!",
] * 5


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_text_round_trips_exactly(kind: str) -> None:
    tokenizer = train_tokenizer(kind, TEXTS, vocab_size=300)
    for text in TEXTS[:3]:
        ids = tokenizer.encode(text)
        assert min(ids) >= 4  # 0-3 are <pad>, <bos>, <eos>, <unk>
        assert tokenizer.decode(ids) == text


def test_bpe_merges_make_tokens_longer_than_characters() -> None:
    tokenizer = train_tokenizer("bpe", TEXTS, vocab_size=400)
    assert len(tokenizer.encode(TEXTS[0])) < len(TEXTS[0]) * 0.7


def test_word_tokenizer_round_trips_ids_and_maps_unknown_words() -> None:
    tokenizer = train_tokenizer("word", TEXTS, vocab_size=1000, lowercase=True)
    ids = tokenizer.encode("The lazy dog jumps")
    assert tokenizer.decode(ids) == "the lazy dog jumps"
    assert tokenizer.encode(tokenizer.decode(ids)) == ids
    assert tokenizer.encode("zebra") == [3]


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_saved_tokenizer_encodes_identically(kind: str) -> None:
    tokenizer = train_tokenizer(kind, TEXTS, vocab_size=300)
    restored = tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert restored.vocab_size == tokenizer.vocab_size
    for text in [*TEXTS[:3], "unseen ~ text"]:
        assert restored.encode(text) == tokenizer.encode(text)


def test_unknown_characters_map_to_unk_or_raise_one_line() -> None:
    tokenizer = CharTokenizer.train(["abc"])
    assert tokenizer.encode("abz") == [4, 5, 3]
    with pytest.raises(DataError, match="never seen in training: 'z'") as error:
        tokenizer.encode("abz", strict=True)
    assert "\n" not in str(error.value)


def test_padding_at_the_end_and_truncation() -> None:
    tokenizer = CharTokenizer.train(["abcd"])
    batch = encode_texts(tokenizer, ["ab", "abcd", "abcdabcd"], max_length=6)
    assert batch.tolist() == [[4, 5, 0, 0, 0, 0], [4, 5, 6, 7, 0, 0], [4, 5, 6, 7, 4, 5]]


def test_bad_tokenizer_name_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'bpe'"):
        train_tokenizer("bpee", TEXTS)


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_word_and_bpe_tokenizers_reserve_a_mask_token(kind: str) -> None:
    tokenizer = train_tokenizer(kind, TEXTS, vocab_size=300)
    assert mask_token_id(tokenizer) == 4 and special_token_ids(tokenizer) == [0, 1, 2, 3, 4]
    assert min(tokenizer.encode(TEXTS[0])) >= 5
    assert 4 in tokenizer.encode("the <mask> fox")  # the literal token reads as the mask
    assert mask_token_id(CharTokenizer.train(TEXTS)) is None


def test_a_saved_tokenizer_without_a_mask_token_still_loads() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    old = Tokenizer(models.WordLevel(unk_token="<unk>"))  # as trained before <mask> existed
    old.pre_tokenizer = pre_tokenizers.Whitespace()
    special = ["<pad>", "<bos>", "<eos>", "<unk>"]
    old.train_from_iterator(TEXTS, trainer=trainers.WordLevelTrainer(special_tokens=special))
    restored = tokenizer_from_dict({"kind": "word", "json": old.to_str()})
    assert restored.encode("The quick") == old.encode("The quick").ids
    assert mask_token_id(restored) is None and special_token_ids(restored) == [0, 1, 2, 3]


def test_a_run_tokenizer_is_read_from_its_run_json(tmp_path) -> None:
    tokenizer = train_tokenizer("word", TEXTS, vocab_size=300)
    record = {"data": {"extra": {"tokenizer": tokenizer.to_dict()}}}
    (tmp_path / "run.json").write_text(json.dumps(record))
    reused = train_tokenizer(f"run:{tmp_path}", ["other words entirely"], vocab_size=10)
    assert reused.to_dict() == tokenizer.to_dict()
    with pytest.raises(ConfigError, match="not a run folder"):
        train_tokenizer(f"run:{tmp_path / 'missing'}", TEXTS)
    (tmp_path / "run.json").write_text(json.dumps({"data": {"extra": {}}}))
    with pytest.raises(ConfigError, match="has no text tokenizer"):
        train_tokenizer(f"run:{tmp_path}", TEXTS)
