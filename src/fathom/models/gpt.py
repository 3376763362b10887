"""GPT-style decoder-only causal language model with weight tying and cached generation.

``forward(tokens) -> logits [B, T, vocab]``. ``generate`` samples with temperature, top-k and
top-p, feeding one token at a time through a key/value cache; when the context is full the cache
is primed again from the last half context (a sliding window).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.models.transformer import TransformerStack
from fathom.nn.attention import KVCache, LayerCache
from fathom.options import Depth, Multiplier, Probability, Size, VocabularySize


class GPT(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        context: int = 256,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        positions: str = "learned",
        bias: bool = True,
        tie_weights: bool = True,
    ) -> None:
        super().__init__()
        self.context = context
        self.stack = TransformerStack(
            vocab_size, dim, depth, heads, mlp_ratio=mlp_ratio, dropout=dropout,
            max_length=context, positions=positions, bias=bias,
        )  # fmt: skip
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        if tie_weights:
            self.lm_head.weight = self.stack.token_embedding.weight
        else:
            nn.init.normal_(self.lm_head.weight, std=0.02)

    def forward(self, tokens: torch.Tensor, caches: list[LayerCache] | None = None) -> torch.Tensor:
        """Next-token logits [B, T, vocab] for every position (continuing ``caches`` if given)."""
        offset = caches[0].self_attention.length if caches else 0
        hidden = self.stack.embed(tokens, offset)
        hidden, _ = self.stack(hidden, causal=True, caches=caches)
        return self.lm_head(hidden)

    def new_caches(self) -> list[LayerCache]:
        return [LayerCache(KVCache(), KVCache()) for _ in self.stack.blocks]

    def attention_maps(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """Causal self-attention weights per layer, [batch, heads, queries, keys]."""
        with torch.no_grad():
            hidden = self.stack.embed(inputs[:, -self.context :])
            return self.stack(hidden, causal=True, return_weights=True)[1]

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        max_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        suppress: Sequence[int] = (),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Continue ``prompt`` [B, T] by ``max_tokens`` tokens: (all tokens, logits of each step).

        ``temperature=0`` is greedy decoding. Without the cache each step re-reads the last
        ``context`` tokens (the reference the cached path is tested against). Token ids in
        ``suppress`` (e.g. padding and other special tokens) are never sampled.
        """
        check_sampling(temperature, top_k, top_p)
        if prompt.shape[1] < 1:
            raise ConfigError("generation needs a prompt of at least one token")
        tokens, step_logits = prompt, []
        caches: list[LayerCache] | None = None
        pending = prompt
        for _ in range(max_tokens):
            if not use_cache:
                logits = self(tokens[:, -self.context :])[:, -1]
            else:
                if caches is None:
                    caches, pending = self.new_caches(), tokens[:, -self.context :]
                elif caches[0].self_attention.length + pending.shape[1] > self.context:
                    caches = self.new_caches()  # context full: prime again from half a context
                    pending = tokens[:, -max(1, self.context // 2) :]
                logits = self(pending, caches)[:, -1]
            step_logits.append(logits)
            if suppress:
                logits = logits.index_fill(
                    -1, torch.tensor(list(suppress), device=logits.device), float("-inf")
                )
            following = sample_next(logits, temperature, top_k, top_p, generator)
            tokens = torch.cat((tokens, following), dim=1)
            pending = following
        logits = torch.stack(step_logits, dim=1) if step_logits else prompt.new_zeros(0)
        return tokens, logits


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")


def sample_next(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """One token per row [B, 1] from logits [B, vocab]: greedy at temperature 0, else sampled."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        threshold = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    if top_p is not None and top_p < 1:
        ordered, order = logits.sort(dim=-1, descending=True)
        cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative - ordered.softmax(dim=-1) >= top_p  # keep the first token always
        logits = logits.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
    probabilities = logits.softmax(dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator)


def gpt(
    vocab_size: VocabularySize,
    dim: Size = 128,
    depth: Depth = 4,
    heads: Depth = 4,
    context: Size = 256,
    mlp_ratio: Multiplier = 4.0,
    dropout: Probability = 0.0,
    positions: str = "learned",
    bias: bool = True,
    tie_weights: bool = True,
) -> GPT:
    """Decoder-only causal language model (nanoGPT's shape) over token ids [batch, length]."""
    return GPT(
        vocab_size, dim, depth, heads, context, mlp_ratio, dropout, positions, bias, tie_weights
    )
