"""Masked-token pretraining (BERT's masked language model) of a Transformer encoder.

Each training batch masks 15% of its text tokens (never padding, ``<mask>`` or other special
tokens): 80% of those become ``<mask>``, 10% a random text token, 10% stay as they were; the
loss is the cross-entropy of the original tokens at those positions only. The masking is drawn
from a generator seeded by (``task.seed``, training step), so a resumed run masks exactly as an
uninterrupted one; validation masks each batch the same way at every evaluation.

The token logits come from the encoder's outputs times its token embedding (the embedding is
the output layer, tied as in BERT), so the head has no parameters of its own: the model trained
and saved is a plain ``transformer_encoder`` (its classifier head unused), which ``fathom
finetune`` starts from. Labels of the dataset are ignored: ``sentiment`` or ``text_csv`` give
their sentences, ``tinyshakespeare`` its windows of text. One process only: the logits are read
from ``model.features``, past a DistributedDataParallel wrapper's gradient hooks.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.data.tokenizers import mask_token_id, special_token_ids, tokenizer_from_dict
from fathom.engine.callbacks import Callback
from fathom.errors import ConfigError
from fathom.tasks.base import Batch, Task

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer

VALIDATION_SEED = 1_000_003  # validation masks: this plus the batch's index, every evaluation


def mask_tokens(
    tokens: torch.Tensor,
    generator: torch.Generator,
    maskable: torch.Tensor,
    mask_id: int,
    rate: float = 0.15,
    mask_share: float = 0.8,
    random_share: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: (corrupted tokens, bool [B, T] of the positions to predict).

    ``maskable`` is a bool per vocabulary id (False for padding and special tokens); each
    maskable token is chosen with probability ``rate``; a chosen one becomes ``mask_id`` with
    probability ``mask_share``, a random maskable id with ``random_share``, else stays.
    """
    device = tokens.device
    chosen = maskable[tokens] & (
        torch.rand(tokens.shape, generator=generator, device=device) < rate
    )
    action = torch.rand(tokens.shape, generator=generator, device=device)
    candidates = maskable.nonzero().squeeze(1)
    picks = torch.randint(len(candidates), tokens.shape, generator=generator, device=device)
    replaced = torch.where(action < mask_share + random_share, candidates[picks], tokens)
    corrupted = torch.where(action < mask_share, torch.full_like(tokens, mask_id), replaced)
    return torch.where(chosen, corrupted, tokens), chosen


def token_encoder(model: nn.Module) -> nn.Module:
    """The module with ``encode(tokens)`` and ``stack.token_embedding`` (``model.features``)."""
    inner = getattr(model, "_orig_mod", model)  # torch.compile
    features = getattr(inner, "features", None)
    if not hasattr(features, "encode") or not hasattr(
        getattr(features, "stack", None), "token_embedding"
    ):
        raise ConfigError(
            f"task masked_lm needs a Transformer encoder of tokens (model.name="
            f"transformer_encoder), got {type(inner).__name__}"
        )
    return features


def masked_token_logits(
    model: nn.Module, tokens: torch.Tensor, chosen: torch.Tensor
) -> torch.Tensor:
    """Logits over the vocabulary [M, vocab] at the ``chosen`` positions (tied embedding)."""
    encoder = token_encoder(model)
    hidden, _, _ = encoder.encode(tokens)
    hidden = hidden[:, hidden.shape[1] - tokens.shape[1] :]  # drop the CLS position, if any
    return hidden[chosen] @ encoder.stack.token_embedding.weight.t()


class MaskedTokenMetrics:
    """Masked-token loss (mean over masked tokens), perplexity and accuracy of an evaluation."""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.tokens = 0
        self.batches = 0  # seeds each validation batch's masking

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.loss_sum += F.cross_entropy(logits, targets, reduction="sum")
        self.correct += (logits.argmax(dim=-1) == targets).sum()
        self.tokens += len(targets)

    def compute(self) -> dict[str, Any]:
        loss = float(self.loss_sum) / max(1, self.tokens)
        return {
            "loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            "accuracy": int(self.correct) / max(1, self.tokens),
        }

    def details(self) -> dict[str, Any]:
        return {"masked_tokens": self.tokens}


class MaskedLanguageModel(Task):
    name = "masked_lm"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(
        self,
        vocab_size: int,
        mask_id: int,
        special_ids: list[int],
        mask_rate: float = 0.15,
        mask_share: float = 0.8,
        random_share: float = 0.1,
        seed: int = 0,
    ) -> None:
        if not 0 < mask_rate < 1:
            raise ConfigError(f"task.mask_rate must be between 0 and 1, got {mask_rate}")
        if mask_share < 0 or random_share < 0 or mask_share + random_share > 1:
            raise ConfigError(
                "task.mask_share and task.random_share must be >= 0 and sum to at most 1, got "
                f"{mask_share} and {random_share}"
            )
        self.vocab_size, self.mask_id, self.seed = vocab_size, mask_id, seed
        self.maskable = torch.ones(vocab_size, dtype=torch.bool)
        self.maskable[[i for i in special_ids if i < vocab_size]] = False
        self.rates = (mask_rate, mask_share, random_share)
        self.step = 0  # the trainer's step, set before each batch (``MaskingClock``)

    @classmethod
    def for_data(cls, info: DataInfo, **options: Any) -> MaskedLanguageModel:
        saved = info.extra.get("tokenizer")
        if saved is None:
            raise ConfigError(
                f"task masked_lm needs a text dataset (sentiment, text_csv, tinyshakespeare); "
                f"'{info.name}' has no tokenizer"
            )
        tokenizer = tokenizer_from_dict(saved)
        mask_id = mask_token_id(tokenizer)
        if mask_id is None:
            raise ConfigError(
                f"task masked_lm needs a <mask> token; the {saved.get('kind')} tokenizer of "
                f"'{info.name}' has none (use data.tokenizer=word or bpe)"
            )
        return cls(int(info.extra["vocab_size"]), mask_id, special_token_ids(tokenizer), **options)

    def callbacks(self, run_dir: Path | None) -> list[Callback]:
        return [MaskingClock(self)]

    def generator(self, seed: int, device: torch.device) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(seed)

    def corrupt(self, tokens: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        maskable = self.maskable.to(tokens.device)
        generator = self.generator(seed, tokens.device)
        return mask_tokens(tokens, generator, maskable, self.mask_id, *self.rates)

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            # the logits come from model.features, past DDP's forward and its gradient hooks
            raise ConfigError("task masked_lm trains in one process (no --nproc / train.strategy)")
        encoder = token_encoder(model)
        rows = encoder.stack.token_embedding.num_embeddings
        if rows != self.vocab_size:
            raise ConfigError(
                f"the model embeds {rows} tokens but the data has a vocabulary of {self.vocab_size}"
            )

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        tokens = batch[0]
        corrupted, chosen = self.corrupt(tokens, self.seed * 1_000_000_007 + self.step)
        logits = masked_token_logits(model, corrupted, chosen).float()
        # sum / count rather than mean: a batch with nothing masked gives 0, not NaN
        loss = F.cross_entropy(logits, tokens[chosen], reduction="sum") / chosen.sum().clamp_min(1)
        return loss, {"masked_fraction": chosen.float().mean()}

    def new_metrics(self, device: torch.device) -> MaskedTokenMetrics:
        return MaskedTokenMetrics(device)

    def evaluation_step(self, model: nn.Module, batch: Batch, metrics: MaskedTokenMetrics) -> None:
        tokens = batch[0]
        corrupted, chosen = self.corrupt(tokens, VALIDATION_SEED + metrics.batches)
        metrics.batches += 1
        metrics.update(masked_token_logits(model, corrupted, chosen).float(), tokens[chosen])

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """The encoder's pooled features [batch, dim]: what fine-tuning starts from."""
        return token_encoder(model)(inputs).float()


class MaskingClock(Callback):
    """Gives the task the trainer's step before each batch, so masks follow the step (and a
    resumed run, whose step comes from its checkpoint, masks as an uninterrupted one)."""

    def __init__(self, task: MaskedLanguageModel) -> None:
        self.task = task

    def batch_start(self, trainer: Trainer) -> None:
        self.task.step = trainer.state.step
