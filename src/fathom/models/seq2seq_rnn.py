"""A GRU encoder–decoder with dot-product attention (Luong-style) for sequence-to-sequence tasks.

The interface every seq2seq model in Fathom shares (``fathom.tasks.seq2seq`` decodes through it):
``forward(source, target_input) -> logits [B, T, V]`` (teacher forcing), ``encode(source) ->
memory`` and ``decode(target_input, memory, source) -> logits [B, T, V]``. Sequences are token ids
padded with 0 at the end; target sequences start with <bos>=1 and end with <eos>=2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fathom.errors import ConfigError
from fathom.options import Depth, Probability, Size, VocabularySize

PAD_ID = 0


class GRUSeq2Seq(nn.Module):
    """Bidirectional GRU encoder; GRU decoder whose outputs attend over the encoder's states.

    The decoder runs over the whole target input at once (teacher forcing) and attention looks
    only at the source, so ``decode`` of a prefix gives the same logits as the full sequence has
    at those positions: greedy and beam search just call it on growing prefixes.
    """

    default_grad_clip_norm = 1.0

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if min(vocab_size, embedding_dim, hidden_size, num_layers) < 1:
            raise ConfigError(
                f"gru_seq2seq sizes must be positive: vocab_size={vocab_size}, "
                f"embedding_dim={embedding_dim}, hidden_size={hidden_size}, num_layers={num_layers}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        inner_dropout = dropout if num_layers > 1 else 0.0
        self.encoder = nn.GRU(embedding_dim, hidden_size, num_layers, batch_first=True,
                              bidirectional=True, dropout=inner_dropout)  # fmt: skip
        self.memory_projection = nn.Linear(2 * hidden_size, hidden_size)
        self.bridge = nn.Linear(hidden_size, num_layers * hidden_size)
        self.decoder = nn.GRU(embedding_dim, hidden_size, num_layers, batch_first=True,
                              dropout=inner_dropout)  # fmt: skip
        self.dropout = nn.Dropout(dropout)
        self.combine = nn.Linear(2 * hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, vocab_size)

    def forward(self, source: torch.Tensor, target_input: torch.Tensor) -> torch.Tensor:
        return self.decode(target_input, self.encode(source), source)

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """Encoder states ``[B, S, H]`` (zeros at padded positions)."""
        lengths = (source != PAD_ID).sum(dim=1).clamp_min(1)
        packed = pack_padded_sequence(
            self.embedding(source), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, _ = self.encoder(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=source.shape[1])
        return self.memory_projection(outputs)

    def decode(
        self, target_input: torch.Tensor, memory: torch.Tensor, source: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``[B, T, V]`` for each position of ``target_input`` given the encoded source."""
        valid = (source != PAD_ID).unsqueeze(-1)
        pooled = (memory * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1)
        initial = torch.tanh(self.bridge(pooled))  # [B, layers * H]
        initial = initial.view(len(source), self.num_layers, -1).transpose(0, 1).contiguous()
        states, _ = self.decoder(self.dropout(self.embedding(target_input)), initial)
        mask = (source != PAD_ID)[:, None, :]  # [B, 1, S]: attend to real source tokens only
        mask = torch.cat([torch.ones_like(mask[..., :1]), mask[..., 1:]], dim=-1)  # never empty
        context = F.scaled_dot_product_attention(states, memory, memory, attn_mask=mask)
        combined = torch.tanh(self.combine(torch.cat([states, context], dim=-1)))
        return self.output(self.dropout(combined))


def gru_seq2seq(
    vocab_size: VocabularySize,
    embedding_dim: Size = 64,
    hidden_size: Size = 128,
    num_layers: Depth = 1,
    dropout: Probability = 0.0,
) -> GRUSeq2Seq:
    """GRU encoder–decoder with attention; ``vocab_size`` comes from the dataset."""
    return GRUSeq2Seq(vocab_size, embedding_dim, hidden_size, num_layers, dropout)
