"""Transformer shapes: causal mask, KV cache, seq2seq interface, attention maps, transfer contract."""

from __future__ import annotations

import pytest
import torch

import fathom.models
from fathom.errors import ConfigError, DataError
from fathom.nn.attention import MultiHeadAttention

VOCAB = 29


def make_gpt(positions: str = "learned", context: int = 32) -> torch.nn.Module:
    torch.manual_seed(0)
    model = fathom.models.create(
        "gpt", vocab_size=VOCAB, dim=32, depth=2, heads=4, context=context, positions=positions
    )
    return model.eval()


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary"])
def test_changing_a_future_token_never_changes_an_earlier_output(positions: str) -> None:
    model = make_gpt(positions)
    tokens = torch.randint(1, VOCAB, (2, 20), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[:, 12] = (changed[:, 12] + 5) % VOCAB
    before, after = model(tokens), model(changed)
    torch.testing.assert_close(before[:, :12], after[:, :12])
    assert not torch.allclose(before[:, 12:], after[:, 12:])


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_cached_generation_equals_uncached(positions: str) -> None:
    model = make_gpt(positions)
    prompt = torch.randint(1, VOCAB, (2, 5), generator=torch.Generator().manual_seed(2))
    cached, cached_logits = model.generate(prompt, 20, temperature=0)
    plain, plain_logits = model.generate(prompt, 20, temperature=0, use_cache=False)
    assert torch.equal(cached, plain) and cached.shape == (2, 25)
    torch.testing.assert_close(cached_logits, plain_logits, atol=1e-4, rtol=1e-4)


def test_generation_past_the_context_keeps_going() -> None:
    model = make_gpt(context=8)
    tokens, _ = model.generate(torch.ones(1, 3, dtype=torch.long), 30, temperature=1.0, top_k=5)
    assert tokens.shape == (1, 33) and int(tokens.max()) < VOCAB


def test_sampling_options_are_checked_and_top_k_one_is_greedy() -> None:
    model = make_gpt()
    prompt = torch.ones(1, 2, dtype=torch.long)
    greedy, _ = model.generate(prompt, 6, temperature=0)
    top1, _ = model.generate(prompt, 6, temperature=0.7, top_k=1)
    nucleus, _ = model.generate(prompt, 6, temperature=1.0, top_p=1e-6)
    assert torch.equal(greedy, top1) and torch.equal(greedy, nucleus)
    with pytest.raises(ConfigError, match="top_p"):
        model.generate(prompt, 2, top_p=1.5)
    with pytest.raises(ConfigError, match="temperature"):
        model.generate(prompt, 2, temperature=-1)


def test_weights_are_tied() -> None:
    model = make_gpt()
    assert model.lm_head.weight is model.stack.token_embedding.weight


def test_explicit_attention_matches_the_fused_kernel() -> None:
    torch.manual_seed(0)
    attention = MultiHeadAttention(16, 4).eval()
    inputs = torch.randn(2, 7, 16)
    padding = torch.zeros(2, 7, dtype=torch.bool)
    padding[1, 5:] = True
    with torch.no_grad():
        fused, none = attention(inputs, causal=True, padding=padding)
    with torch.no_grad():
        explicit, weights = attention(inputs, causal=True, padding=padding, return_weights=True)
    assert none is None and weights.shape == (2, 4, 7, 7)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 7))
    assert float(weights[0, :, 2, 3:].abs().sum()) == 0.0  # causal
    assert float(weights[1, :, 6, 5:].abs().sum()) == 0.0  # padded keys


def test_encoder_ignores_padding_and_keeps_the_contract() -> None:
    torch.manual_seed(0)
    for pooling in ("cls", "mean"):
        model = fathom.models.create(
            "transformer_encoder", vocab_size=VOCAB, num_classes=3, dim=32, heads=4,
            pooling=pooling,
        ).eval()  # fmt: skip
        tokens = torch.randint(4, VOCAB, (2, 9))
        padded = torch.cat((tokens, torch.zeros(2, 4, dtype=torch.long)), dim=1)
        torch.testing.assert_close(model(tokens), model(padded), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.head(model.features(tokens)), model(tokens))
        groups = model.parameter_groups()
        flat = [id(p) for group in groups for p in group]
        assert len(flat) == len(set(flat)) == len(list(model.parameters())) and len(groups) >= 3
        maps = model.attention_maps(tokens)
        positions = 9 + (pooling == "cls")
        assert len(maps) == 2 and maps[0].shape == (2, 4, positions, positions)
        model.reset_head(5)
        assert model(tokens).shape == (2, 5)


def test_seq2seq_interface_encode_then_decode_equals_forward() -> None:
    torch.manual_seed(0)
    model = fathom.models.create("transformer_seq2seq", vocab_size=VOCAB, dim=32, heads=4).eval()
    source = torch.randint(4, VOCAB, (3, 11))
    source[0, 8:] = 0
    target = torch.randint(4, VOCAB, (3, 6))
    target[:, 0] = 1
    logits = model(source, target)
    assert logits.shape == (3, 6, VOCAB)
    memory = model.encode(source)
    assert memory.shape[:2] == (3, 11)
    torch.testing.assert_close(model.decode(target, memory, source), logits)
    torch.testing.assert_close(model.decode(target[:, :3], memory, source), logits[:, :3])
    cross = model.attention_maps((source, target))
    assert len(cross) == 2 and cross[0].shape == (3, 4, 6, 11)
    assert float(cross[0][0, :, :, 8:].abs().sum()) == 0.0  # padded source never attended
    assert len(model.attention_maps(source)) == 2


def test_bad_inputs_are_one_line_errors() -> None:
    model = make_gpt(context=8)
    with pytest.raises(DataError, match="max_length=8"):
        model(torch.ones(1, 9, dtype=torch.long))
    with pytest.raises(DataError, match="integer tensor"):
        model(torch.randn(1, 4))
    with pytest.raises(DataError, match="outside the vocabulary"):
        model(torch.full((1, 4), VOCAB))
    with pytest.raises(ConfigError, match="not divisible"):
        fathom.models.create("gpt", vocab_size=VOCAB, dim=30, heads=4)
    with pytest.raises(ConfigError, match="did you mean 'rotary'"):
        fathom.models.create("gpt", vocab_size=VOCAB, positions="rotar")
