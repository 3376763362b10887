"""Seq2seq models (kind "seq2seq"): forward/backward and the encode/decode interface."""

from __future__ import annotations

import pytest
import torch

import fathom.models
from fathom.data.bundle import DataInfo

INFO = DataInfo("pairs", "seq2seq", (10,), extra={"vocab_size": 17})
SEQ2SEQ_MODELS = fathom.models.list("seq2seq")
SMALL = {
    "gru_seq2seq": {"hidden_size": 32, "num_layers": 2},
    "transformer_seq2seq": {"dim": 32, "encoder_depth": 2, "decoder_depth": 2},
}


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    source = torch.randint(4, 17, (3, 10), generator=generator)
    source[1, 6:] = 0
    target = torch.randint(4, 17, (3, 7), generator=generator)
    target[:, 0], target[:, -1] = 1, 2
    return source, target


@pytest.mark.parametrize("name", SEQ2SEQ_MODELS)
def test_seq2seq_models_forward_and_backward(name: str) -> None:
    torch.manual_seed(0)
    model = fathom.models.create_for_data(name, INFO, **SMALL[name])
    source, target = batch()
    logits = model(source, target[:, :-1])
    assert logits.shape == (3, 6, 17) and torch.isfinite(logits).all()
    logits.logsumexp(-1).mean().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), parameter_name


@pytest.mark.parametrize("name", SEQ2SEQ_MODELS)
def test_decode_of_a_prefix_matches_teacher_forcing(name: str) -> None:
    torch.manual_seed(0)
    model = fathom.models.create_for_data(name, INFO, **SMALL[name]).eval()
    source, target = batch()
    with torch.no_grad():
        full = model(source, target)
        memory = model.encode(source)
        torch.testing.assert_close(model.decode(target[:, :3], memory, source), full[:, :3])
        padded = torch.cat([source, torch.zeros(3, 4, dtype=torch.long)], dim=1)
        torch.testing.assert_close(model(padded, target), full, atol=1e-5, rtol=1e-4)
