"""Recurrent models (kind "sequence"): forward/backward on tokens and float sequences, padding, clipping."""

from __future__ import annotations

import pytest
import torch

import fathom.models
from fathom.assemble import build_trainer, resolve_config
from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.errors import ConfigError

TOKENS = DataInfo("text", "classification", (12,), num_classes=3, extra={"vocab_size": 20})
SERIES = DataInfo("series", "regression", (16, 2), extra={"target_size": 4})
# The recurrent models; the Transformer encoder (also kind "sequence") is in test_sequence_registry.py.
SEQUENCE_MODELS = ["gru", "lstm", "rnn"]
VARIANTS = [
    {},
    {"bidirectional": True, "num_layers": 2, "dropout": 0.1},
    {"pooling": "mean", "hidden_size": 16},
    {"pooling": "max", "bidirectional": True, "hidden_size": 16},
]


def token_batch() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, 20, (3, 12), generator=generator)
    tokens[1, 7:] = 0  # padded at the end
    tokens[2, 3:] = 0
    return tokens


def check_forward_backward(model: torch.nn.Module, inputs: torch.Tensor, outputs: int) -> None:
    result = model(inputs)
    assert result.shape == (len(inputs), outputs)
    assert torch.isfinite(result).all()
    result.square().mean().backward()
    for name, parameter in model.named_parameters():
        if name.endswith("embedding.weight"):
            continue  # padding rows get no gradient, others do
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_sequence_models_forward_and_backward(name: str, variant: dict) -> None:
    torch.manual_seed(0)
    model = fathom.models.create_for_data(name, TOKENS, **variant)
    check_forward_backward(model, token_batch(), 3)
    model = fathom.models.create_for_data(name, SERIES, **variant)
    check_forward_backward(model, torch.randn(3, 16, 2), 4)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_sequence_models_keep_the_transfer_contract(name: str) -> None:
    model = fathom.models.create_for_data(name, TOKENS, bidirectional=True).eval()
    inputs = token_batch()
    torch.testing.assert_close(model.head(model.features(inputs)), model(inputs))
    groups = model.parameter_groups()
    assert sum(map(len, groups)) == len(list(model.parameters())) and len(groups) >= 2
    model.reset_head(5)
    assert model(inputs).shape == (3, 5)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_padding_beyond_a_sequence_does_not_change_its_output(name: str, pooling: str) -> None:
    torch.manual_seed(0)
    model = fathom.models.create_for_data(name, TOKENS, bidirectional=True, pooling=pooling).eval()
    short = torch.tensor([[5, 6, 7, 8, 0, 0]])
    longer = torch.cat([short, torch.zeros(1, 9, dtype=torch.long)], dim=1)
    batch = torch.cat([longer, torch.randint(4, 20, (1, 15))])  # a longer neighbour in the batch
    with torch.no_grad():
        alone = model(short)
        torch.testing.assert_close(model(longer), alone)
        torch.testing.assert_close(model(batch)[:1], alone)
        assert not torch.allclose(model(torch.tensor([[5, 6, 7, 9]])), alone)


def test_bad_options_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="did you mean 'mean'"):
        fathom.models.create_for_data("gru", TOKENS, pooling="maen")
    image = DataInfo("grey", "classification", (1, 8, 8), num_classes=10)
    with pytest.raises(ConfigError, match="token ids .* or sequences of shape"):
        fathom.models.create_for_data("lstm", image)


def test_recurrent_models_clip_gradients_by_default() -> None:
    inputs, targets = torch.randn(8, 16, 2), torch.randn(8, 4)
    bundle = DataBundle(SERIES, Split(inputs, targets), Split(inputs, targets))
    model = fathom.models.create_for_data("gru", SERIES)
    for overrides, norm, value in [
        ([], 1.0, None),
        (["train.grad_clip_norm=5"], 5.0, None),
        (["train.grad_clip_value=0.5"], None, 0.5),
    ]:
        config = resolve_config({"model": {"name": "gru"}}, overrides=overrides, use_recipe=False)
        trainer = build_trainer(config, model, bundle, None)
        assert (trainer.clipper.max_norm, trainer.clipper.max_value) == (norm, value)
    mlp = fathom.models.create_for_data("mlp", SERIES)
    config = resolve_config({"model": {"name": "mlp"}}, use_recipe=False)
    assert not build_trainer(config, mlp, bundle, None).clipper
