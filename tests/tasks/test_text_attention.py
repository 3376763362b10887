"""The attention figure of text classification runs: real tokens only, CLS labelled, in the report."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch

from fathom.data.tokenizers import train_tokenizer
from fathom.models.transformer import transformer_encoder
from fathom.tasks.classification import Classification, TextAttention


def test_text_attention_plots_a_validation_sentence_without_padding(tmp_path, monkeypatch) -> None:
    fitted = train_tokenizer("word", ["a good film", "a bad film"], 100, True)
    seen = {}

    def record_plot(weights, labels, path, title, row_labels=None):
        seen["weights"], seen["labels"] = weights, list(labels)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"png")
        return path

    monkeypatch.setattr("fathom.report.attention.plot_attention", record_plot)
    model = transformer_encoder(vocab_size=fitted.vocab_size, num_classes=2, dim=16, heads=2,
                                depth=1, pooling="cls")  # fmt: skip
    ids = [*fitted.encode("a good film"), 3]  # 3: <unk>, a word never seen in training
    validation = torch.tensor([[*ids, 0, 0, 0]])
    trainer = SimpleNamespace(model=model, validation_inputs=lambda count: validation[:count],
                              device=torch.device("cpu"))  # fmt: skip
    TextAttention(fitted.to_dict(), tmp_path).fit_end(trainer)
    assert seen["labels"] == ["[CLS]", "a", "good", "film", "<unk>"]
    assert seen["weights"].shape == (2, len(ids) + 1, len(ids) + 1)
    section = json.loads((tmp_path / "sections" / "attention.json").read_text())
    assert section["images"] == ["plots/attention.png"]


def test_only_text_datasets_get_the_attention_callback(tmp_path) -> None:
    fitted = train_tokenizer("char", ["abc"], 100, False)
    assert Classification(2).callbacks(tmp_path) == []
    assert Classification(2, tokenizer=fitted.to_dict()).callbacks(None) == []
    (callback,) = Classification(2, tokenizer=fitted.to_dict()).callbacks(tmp_path)
    assert isinstance(callback, TextAttention)
