"""Registry-wide: every sequence, language and seq2seq model builds, runs forward and backward."""

from __future__ import annotations

import pytest
import torch

import fathom.models
from fathom.data.bundle import DataInfo

VOCAB = 37
TEXT = DataInfo("text", "classification", (12,), num_classes=3, extra={"vocab_size": VOCAB})
CORPUS = DataInfo("corpus", "language_model", (16,), extra={"vocab_size": VOCAB})
PAIRS = DataInfo("pairs", "seq2seq", (10,), extra={"vocab_size": VOCAB})
SMALL = {"dim": 32, "heads": 2}


def small_options(name: str) -> dict:
    return SMALL if name.startswith(("transformer", "gpt")) else {}


def tokens(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    values = torch.randint(4, VOCAB, (batch, length), generator=generator)
    values[0, length - 3 :] = 0  # padding at the end of the first sequence
    return values


def check_gradients(model: torch.nn.Module, outputs: torch.Tensor) -> None:
    assert torch.isfinite(outputs).all()
    outputs.square().mean().backward()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None, name
            assert torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("name", fathom.models.list("sequence"))
def test_sequence_classifier_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = fathom.models.create_for_data(name, TEXT, **small_options(name))
    outputs = model(tokens(4, 12))
    assert outputs.shape == (4, 3)
    check_gradients(model, outputs)


@pytest.mark.parametrize("name", fathom.models.list("language"))
def test_language_model_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = fathom.models.create_for_data(name, CORPUS, **small_options(name))
    outputs = model(tokens(3, 16).clamp_min(1))
    assert outputs.shape == (3, 16, VOCAB)
    check_gradients(model, outputs)


@pytest.mark.parametrize("name", fathom.models.list("seq2seq"))
def test_seq2seq_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = fathom.models.create_for_data(name, PAIRS, **small_options(name))
    target = tokens(4, 7, seed=1)
    target[:, 0] = 1  # <bos>
    outputs = model(tokens(4, 10), target)
    assert outputs.shape == (4, 7, VOCAB)
    check_gradients(model, outputs)
