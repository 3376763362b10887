"""Encoder–decoder Transformer with cross-attention for sequence-to-sequence tasks.

The interface shared with the recurrent seq2seq models: ``forward(source, target_input)`` gives
teacher-forced logits [B, T, vocab]; ``encode(source) -> memory`` and
``decode(target_input, memory, source) -> logits`` let decoders (greedy, beam search) reuse the
encoder's work. Source and target share one vocabulary and one embedding (id 0 is padding).
"""

from __future__ import annotations

import torch
from torch import nn

from fathom.models.transformer import TransformerStack, padding_of
from fathom.options import Depth, Multiplier, Probability, Size, VocabularySize


class TransformerSeq2Seq(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        dim: int = 128,
        encoder_depth: int = 2,
        decoder_depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        max_length: int = 256,
        positions: str = "learned",
    ) -> None:
        super().__init__()
        options = {"mlp_ratio": mlp_ratio, "dropout": dropout, "max_length": max_length}
        self.encoder = TransformerStack(
            vocab_size, dim, encoder_depth, heads, positions=positions, **options
        )
        self.decoder = TransformerStack(
            vocab_size, dim, decoder_depth, heads, positions=positions, cross_attention=True,
            **options,
        )  # fmt: skip
        self.decoder.token_embedding = self.encoder.token_embedding  # one shared vocabulary
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        self.lm_head.weight = self.encoder.token_embedding.weight

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """Encoder outputs [B, S, dim] for source ids [B, S] padded with 0."""
        hidden = self.encoder.embed(source)
        return self.encoder(hidden, padding=padding_of(source))[0]

    def decode(
        self, target_input: torch.Tensor, memory: torch.Tensor, source: torch.Tensor
    ) -> torch.Tensor:
        """Logits [B, T, vocab] for the next target token at every position of ``target_input``."""
        hidden = self.decoder.embed(target_input)
        hidden, _ = self.decoder(
            hidden, causal=True, memory=memory, memory_padding=padding_of(source)
        )
        return self.lm_head(hidden)

    def forward(self, source: torch.Tensor, target_input: torch.Tensor) -> torch.Tensor:
        return self.decode(target_input, self.encode(source), source)

    def attention_maps(
        self, inputs: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    ) -> list[torch.Tensor]:
        """Encoder self-attention per layer for ``source``; for ``(source, target_input)`` the
        decoder's cross-attention per layer [batch, heads, target positions, source positions]."""
        with torch.no_grad():
            if isinstance(inputs, torch.Tensor):
                hidden = self.encoder.embed(inputs)
                return self.encoder(hidden, padding=padding_of(inputs), return_weights=True)[1]
            source, target_input = inputs
            memory = self.encode(source)
            hidden = self.decoder.embed(target_input)
            maps = self.decoder(
                hidden, causal=True, memory=memory, memory_padding=padding_of(source),
                return_weights=True,
            )[1]  # fmt: skip
            return maps[1::2]  # each layer gives [self, cross]


def transformer_seq2seq(
    vocab_size: VocabularySize,
    dim: Size = 128,
    encoder_depth: Depth = 2,
    decoder_depth: Depth = 2,
    heads: Depth = 4,
    mlp_ratio: Multiplier = 4.0,
    dropout: Probability = 0.1,
    max_length: Size = 256,
    positions: str = "learned",
) -> TransformerSeq2Seq:
    """Encoder–decoder Transformer (Vaswani et al.) with pre-norm blocks and tied embeddings."""
    return TransformerSeq2Seq(
        vocab_size, dim, encoder_depth, decoder_depth, heads, mlp_ratio, dropout, max_length,
        positions,
    )  # fmt: skip
