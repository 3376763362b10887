"""The language_model task: metrics, overfitting a short text, generation and its errors."""

from __future__ import annotations

import math

import pytest
import torch

import fathom
from fathom.data.language import language_model_bundle
from fathom.errors import ConfigError, DataError
from fathom.tasks import create_for_data
from fathom.tasks.language_model import LanguageModelMetrics
from tests_support import InterruptAt

SHORT_TEXT = (
    "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
)


def test_metrics_perplexity_and_bits_per_character() -> None:
    metrics = LanguageModelMetrics(torch.device("cpu"), characters_per_token=2.0)
    logits = torch.zeros(1, 4, 8)  # uniform over 8 tokens: loss ln 8
    metrics.update(logits, torch.tensor([[5, 6, 7, 0]]))  # the 0 is padding and does not count
    result = metrics.compute()
    assert result["loss"] == pytest.approx(math.log(8))
    assert result["perplexity"] == pytest.approx(8.0)
    assert result["bits_per_character"] == pytest.approx(1.5)  # 3 bits per token, 2 chars each
    assert metrics.tokens == 3


def test_a_small_language_model_overfits_a_short_text(tmp_path) -> None:
    torch.manual_seed(0)
    bundle = language_model_bundle(
        "short", SHORT_TEXT * 12, context=24, stride=1, tokenizer="char", vocab_size=0
    )
    model = fathom.models.create(
        "gpt", vocab_size=bundle.info.extra["vocab_size"], dim=48, depth=2, heads=4, context=24
    )
    run = fathom.fit(
        model, bundle, epochs=6, lr=3e-3, batch_size=32, run_dir=tmp_path, progress="none",
        overrides=["task.sample_tokens=30"],
    )  # fmt: skip
    assert run.summary["test"]["loss"] < 0.25
    assert run.summary["test"]["bits_per_character"] < 0.4
    text = run.generate(prompt="To be, or not", max_tokens=20, temperature=0)["text"]
    assert text.startswith("To be, or not to be, that")
    sections = {path.stem for path in (run.path / "sections").glob("*.json")}
    assert {"text_samples", "attention"} <= sections
    assert (run.path / "plots" / "attention.png").stat().st_size > 5000


def test_generation_refuses_bad_prompts_in_one_line(tmp_path) -> None:
    bundle = language_model_bundle(
        "toy", "abcab" * 40, context=8, stride=2, tokenizer="char", vocab_size=0
    )
    task = create_for_data("language_model", bundle.info)
    model = fathom.models.create(
        "gpt", vocab_size=bundle.info.extra["vocab_size"], dim=16, heads=2, context=8
    )
    with pytest.raises(DataError, match="never seen in training: 'z'"):
        task.generate(model, bundle.info, tmp_path, prompt="abz")
    with pytest.raises(DataError, match="empty prompt"):
        task.generate(model, bundle.info, tmp_path, prompt="")
    with pytest.raises(ConfigError, match="top_k"):
        task.generate(model, bundle.info, tmp_path, prompt="ab", top_k=0)
    result = task.generate(model, bundle.info, tmp_path, prompt="ab", max_tokens=5, seed=3)
    assert (
        len(result["text"]) == 7 and (tmp_path / "sample-seed3.txt").read_text() == result["text"]
    )
    assert result == task.generate(model, bundle.info, tmp_path, prompt="ab", max_tokens=5, seed=3)


def test_resuming_mid_epoch_gives_the_same_weights(tmp_path) -> None:
    bundle = language_model_bundle(
        "toy", SHORT_TEXT * 6, context=16, stride=3, tokenizer="char", vocab_size=0
    )
    settings = {
        "epochs": 2, "batch_size": 16, "progress": "none",
        "overrides": ["train.checkpoint_every_steps=5", "task.sample_tokens=0", "model.dim=16",
                      "model.heads=2", "model.depth=1", "model.context=16", "model.dropout=0.1"],
    }  # fmt: skip
    whole = fathom.fit("gpt", bundle, run_dir=tmp_path / "whole", **settings)
    with pytest.raises(KeyboardInterrupt):
        fathom.fit("gpt", bundle, run_dir=tmp_path / "cut", callbacks=[InterruptAt(10)], **settings)
    (cut,) = list((tmp_path / "cut").iterdir())
    resumed = fathom.resume(cut, data=bundle)
    assert resumed.summary["steps"] == whole.summary["steps"] > 10
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
