"""Generated seq2seq datasets: deterministic, held out, correctly encoded."""

from __future__ import annotations

import datetime as dt

import pytest
import torch

import fathom.data
from fathom.data.translation import BOS, EOS, CharVocabulary, vocabulary_of
from fathom.errors import ConfigError, DataError


def texts(bundle, split: str) -> list[tuple[str, str]]:
    vocabulary = vocabulary_of(bundle.info)
    chosen = getattr(bundle, split)
    return [(vocabulary.decode(s.tolist()), vocabulary.decode(t.tolist()))
            for s, t in zip(chosen.inputs, chosen.targets, strict=True)]  # fmt: skip


def test_dates_are_deterministic_held_out_and_correct() -> None:
    options = {"size": 600, "val_size": 100, "test_size": 100}
    bundle = fathom.data.load("dates", **options)
    again = fathom.data.load("dates", **options)
    other = fathom.data.load("dates", data_seed=1, **options)
    torch.testing.assert_close(bundle.train.inputs, again.train.inputs)
    assert not torch.equal(bundle.test.targets, other.test.targets)
    assert bundle.info.task == "seq2seq" and bundle.info.extra["vocab_size"] == len(
        bundle.info.extra["vocabulary"]
    )
    targets = bundle.train.targets
    assert (targets[:, 0] == BOS).all() and ((targets == EOS).sum(dim=1) == 1).all()
    train_dates = {target for _, target in texts(bundle, "train")}
    for split in ("val", "test"):
        assert not train_dates & {target for _, target in texts(bundle, split)}
    for source, target in texts(bundle, "test")[:50]:
        day = dt.date.fromisoformat(target)
        assert str(day.year % 100).zfill(2) in source and str(day.day) in source


def test_arithmetic_results_are_right_and_held_out() -> None:
    bundle = fathom.data.load("arithmetic", size=500, val_size=50, test_size=50, max_value=99)
    pairs = texts(bundle, "train")
    for source, target in pairs:
        left, sign, right = source.partition("+") if "+" in source else source.rpartition("-")
        assert int(target) == (int(left) + int(right) if sign == "+" else int(left) - int(right))
    assert not {s for s, _ in pairs} & {s for s, _ in texts(bundle, "test")}


def test_vocabulary_round_trip_and_errors() -> None:
    vocabulary = CharVocabulary.of("0123456789+-")
    ids = vocabulary.encode("12+35", target=True)
    assert ids[0] == BOS and ids[-1] == EOS and vocabulary.decode(ids) == "12+35"
    with pytest.raises(DataError, match=r"character\(s\) 'x' are not in the vocabulary"):
        vocabulary.encode("12x3")
    with pytest.raises(ConfigError, match="data.val_size"):
        fathom.data.load("arithmetic", val_size=10**7)
