"""Masked-token pretraining: BERT masking statistics, the loss on masked positions only
(against a slow reference), determinism per step, and one-line refusals of bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fathom.data.bundle import DataInfo
from fathom.data.tokenizers import train_tokenizer
from fathom.errors import ConfigError
from fathom.models.transformer import transformer_encoder
from fathom.tasks import create_for_data
from fathom.tasks.masked_lm import MaskedLanguageModel, mask_tokens

VOCAB, MASK = 50, 4
SPECIAL = [0, 1, 2, 3, MASK]


def text_batch(rows: int = 512, length: int = 64, seed: int = 0) -> torch.Tensor:
    """Token ids of text (ids 3..49, <unk> included) padded with 0 after a random length."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(5, VOCAB, (rows, length), generator=generator)
    tokens[torch.rand(rows, length, generator=generator) < 0.05] = 3  # some <unk>
    lengths = torch.randint(4, length + 1, (rows, 1), generator=generator)
    return tokens.masked_fill(torch.arange(length) >= lengths, 0)


def maskable() -> torch.Tensor:
    allowed = torch.ones(VOCAB, dtype=torch.bool)
    allowed[SPECIAL] = False
    return allowed


def masked(tokens: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return mask_tokens(tokens, torch.Generator().manual_seed(seed), maskable(), MASK)


def test_bert_masking_rates_on_a_big_batch() -> None:
    tokens = text_batch()
    corrupted, chosen = masked(tokens, seed=1)
    text = maskable()[tokens]
    assert chosen.sum() / text.sum() == pytest.approx(0.15, abs=0.01)
    picked, result = tokens[chosen], corrupted[chosen]
    became_mask = (result == MASK).float().mean()
    unchanged = (result == picked).float().mean()
    assert became_mask == pytest.approx(0.8, abs=0.02)
    assert unchanged == pytest.approx(0.1 + 0.1 / len(maskable().nonzero()), abs=0.02)
    randomised = result[(result != MASK) & (result != picked)]
    assert maskable()[randomised].all()  # random replacements are text tokens, never <pad>
    assert torch.equal(corrupted[~chosen], tokens[~chosen])  # nothing else changes


def test_padding_and_special_tokens_are_never_masked() -> None:
    tokens = text_batch()
    for seed in range(5):
        corrupted, chosen = masked(tokens, seed)
        assert not chosen[tokens == 0].any() and not chosen[tokens == 3].any()
        assert torch.equal(corrupted == 0, tokens == 0)  # padding stays padding, no new padding


def test_masking_is_deterministic_for_a_seed_and_differs_between_seeds() -> None:
    tokens = text_batch(rows=64)
    first, again, other = masked(tokens, 7), masked(tokens, 7), masked(tokens, 8)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def task_and_model(pooling: str = "cls") -> tuple[MaskedLanguageModel, torch.nn.Module]:
    torch.manual_seed(0)
    model = transformer_encoder(VOCAB, 2, dim=16, depth=1, heads=2, dropout=0.0, pooling=pooling)
    return MaskedLanguageModel(VOCAB, MASK, SPECIAL, seed=3), model


def slow_reference_loss(model: torch.nn.Module, corrupted, original, chosen) -> torch.Tensor:
    """Cross-entropy over every position, the model's full hidden states times the embedding,
    averaged over the chosen positions one by one."""
    hidden = model.features.encode(corrupted)[0]
    offset = hidden.shape[1] - corrupted.shape[1]
    weight = model.features.stack.token_embedding.weight
    losses = []
    for row, column in chosen.nonzero().tolist():
        logits = hidden[row, column + offset] @ weight.t()
        losses.append(F.cross_entropy(logits[None], original[row, column][None]))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_the_loss_counts_masked_positions_only(pooling: str) -> None:
    task, model = task_and_model(pooling)
    tokens = text_batch(rows=6, length=12)
    task.step = 5
    loss, _ = task.training_loss("main", model, (tokens, torch.zeros(6, dtype=torch.long)))
    corrupted, chosen = task.corrupt(tokens, task.seed * 1_000_000_007 + 5)
    expected = slow_reference_loss(model, corrupted, tokens, chosen)
    assert torch.allclose(loss, expected, atol=1e-5)
    changed = tokens.clone()
    changed[~chosen & (tokens > 4)] = 7  # unmasked targets do not enter the loss ...
    assert not torch.equal(changed, tokens)
    again, _ = task.training_loss("main", model, (changed, torch.zeros(6, dtype=torch.long)))
    assert not torch.allclose(again, loss)  # ... but they are context, so the loss moves
    task.step = 6
    assert not torch.allclose(task.training_loss("main", model, (tokens, tokens))[0], loss)


def test_validation_masks_the_same_way_at_every_evaluation() -> None:
    task, model = task_and_model()
    model.eval()
    tokens = text_batch(rows=8, length=12)
    results = []
    for step in (0, 100):
        task.step = step  # the training step does not change validation masks
        metrics = task.new_metrics(torch.device("cpu"))
        with torch.no_grad():  # as the trainer evaluates
            task.evaluation_step(model, (tokens, tokens[:, 0]), metrics)
        results.append(metrics.compute())
    assert results[0] == results[1] and 0 <= results[0]["accuracy"] <= 1


def info_of(kind: str) -> DataInfo:
    tokenizer = train_tokenizer(kind, ["the cat sat on the mat", "a dog ran"], 100)
    extra = {"tokenizer": tokenizer.to_dict(), "vocab_size": tokenizer.vocab_size}
    return DataInfo(name="toy", task="classification", input_shape=(8,), num_classes=2, extra=extra)


def test_the_task_takes_mask_and_special_ids_from_the_tokenizer() -> None:
    task = create_for_data("masked_lm", info_of("word"))
    assert task.mask_id == 4 and not task.maskable[:5].any() and task.maskable[5:].all()


def test_bad_inputs_are_one_line_config_errors() -> None:
    images = DataInfo(name="digits", task="classification", input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ConfigError, match="needs a text dataset") as error:
        create_for_data("masked_lm", images)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="tokenizer of 'toy' has none"):
        create_for_data("masked_lm", info_of("char"))
    task, _ = task_and_model()
    mlp = torch.nn.Sequential(torch.nn.Linear(8, 2))
    with pytest.raises(ConfigError, match="model.name=transformer_encoder"):
        task.check_batch(mlp, (text_batch(2, 8), torch.zeros(2)))
    with pytest.raises(ConfigError, match="mask_rate"):
        MaskedLanguageModel(VOCAB, MASK, SPECIAL, mask_rate=1.5)
