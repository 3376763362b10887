"""Recurrent networks (``rnn``, ``lstm``, ``gru``) on PyTorch's fused recurrent layers.

Two input modes: token ids ``[B, T]`` padded with 0 at the end (when ``vocab_size`` is given:
an embedding, lengths from the padding, ``pack_padded_sequence``), or float sequences
``[B, T, F]`` (``input_shape=(T, F)``; ``(T,)`` is read as one feature) for forecasting and
regression. ``features`` pools the sequence into one vector (the last state of every direction,
or the mean/max over valid steps) and ``head`` maps it to the outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fathom.errors import ConfigError, closest
from fathom.nn.classifier import ClassifierModel
from fathom.options import Depth, Probability, Size, VocabularySize

PAD_ID = 0
CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
POOLINGS = ("last", "mean", "max")


class RecurrentFeatures(nn.Module):
    """(embedding →) stacked recurrent layers → one pooled vector per sequence."""

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        pooling: str,
        vocab_size: int | None,
        embedding_dim: int,
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.embedding = (
            nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID) if vocab_size else None
        )
        self.rnn = CELLS[cell](
            embedding_dim if vocab_size else input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.output_size = hidden_size * (2 if bidirectional else 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:
            sequence = inputs.float() if inputs.dim() == 3 else inputs.float().unsqueeze(-1)
            outputs, hidden = self.rnn(sequence)
            lengths = None
        else:
            lengths = (inputs != PAD_ID).sum(dim=1).clamp_min(1)
            packed = pack_padded_sequence(
                self.embedding(inputs), lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            packed_outputs, hidden = self.rnn(packed)
            outputs, _ = pad_packed_sequence(
                packed_outputs, batch_first=True, total_length=inputs.shape[1]
            )
        if self.pooling == "last":
            final = hidden[0] if isinstance(hidden, tuple) else hidden  # LSTM: (h, c)
            directions = 2 if self.rnn.bidirectional else 1
            return torch.cat(list(final[-directions:]), dim=1)
        return pool_steps(outputs, lengths, self.pooling)


def pool_steps(outputs: torch.Tensor, lengths: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """Mean or max of ``outputs [B, T, H]`` over the first ``lengths`` steps of each sequence."""
    if lengths is None:
        return outputs.mean(dim=1) if pooling == "mean" else outputs.amax(dim=1)
    steps = torch.arange(outputs.shape[1], device=outputs.device)
    valid = (steps[None, :] < lengths[:, None].to(outputs.device)).unsqueeze(-1)
    if pooling == "mean":
        return (outputs * valid).sum(dim=1) / valid.sum(dim=1)
    return outputs.masked_fill(~valid, float("-inf")).amax(dim=1)


class RecurrentNetwork(ClassifierModel):
    """``features``: the recurrent encoder and pooling; ``head``: dropout and a linear layer.

    Recurrent networks train with gradient clipping by default: ``api.build_trainer`` uses
    ``default_grad_clip_norm`` when neither ``train.grad_clip_norm`` nor ``grad_clip_value`` is set.
    """

    default_grad_clip_norm = 1.0

    def __init__(self, features: RecurrentFeatures, num_classes: int, dropout: float) -> None:
        head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features.output_size, num_classes))
        super().__init__(features, head)


def recurrent(
    cell: str,
    num_classes: Size,
    input_shape: Sequence[Size] | None = None,
    vocab_size: VocabularySize | None = None,
    hidden_size: Size = 128,
    num_layers: Depth = 1,
    bidirectional: bool = False,
    dropout: Probability = 0.0,
    pooling: str = "last",
    embedding_dim: Size = 64,
) -> RecurrentNetwork:
    """A recurrent network of ``cell`` (rnn, lstm, gru) sized for tokens or float sequences."""
    if pooling not in POOLINGS:
        hint = closest(pooling, POOLINGS) or f" (choose from {', '.join(POOLINGS)})"
        raise ConfigError(f"model.pooling: unknown pooling '{pooling}'{hint}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")
    if min(hidden_size, num_layers, num_classes, embedding_dim) < 1:
        raise ConfigError(
            f"{cell} sizes must be positive: hidden_size={hidden_size}, num_layers={num_layers}, "
            f"num_classes={num_classes}, embedding_dim={embedding_dim}"
        )
    shape = tuple(input_shape or ())
    if not vocab_size and len(shape) not in (1, 2):
        raise ConfigError(
            f"model '{cell}' needs token ids (a dataset with a vocabulary) or sequences of shape "
            f"(time, features); got input shape {list(shape)}"
        )
    input_size = shape[1] if len(shape) == 2 else 1
    features = RecurrentFeatures(
        cell, input_size, hidden_size, num_layers, bidirectional, dropout, pooling,
        vocab_size, embedding_dim,
    )  # fmt: skip
    return RecurrentNetwork(features, num_classes, dropout)


def rnn(num_classes: Size, input_shape: Sequence[Size] | None = None,
        vocab_size: VocabularySize | None = None, hidden_size: Size = 128,
        num_layers: Depth = 1, bidirectional: bool = False, dropout: Probability = 0.0,
        pooling: str = "last", embedding_dim: Size = 64) -> RecurrentNetwork:  # fmt: skip
    """Elman RNN (tanh) classifier/regressor."""
    return recurrent("rnn", num_classes, input_shape, vocab_size, hidden_size, num_layers,
                     bidirectional, dropout, pooling, embedding_dim)  # fmt: skip


def lstm(num_classes: Size, input_shape: Sequence[Size] | None = None,
         vocab_size: VocabularySize | None = None, hidden_size: Size = 128,
         num_layers: Depth = 1, bidirectional: bool = False, dropout: Probability = 0.0,
         pooling: str = "last", embedding_dim: Size = 64) -> RecurrentNetwork:  # fmt: skip
    """LSTM classifier/regressor."""
    return recurrent("lstm", num_classes, input_shape, vocab_size, hidden_size, num_layers,
                     bidirectional, dropout, pooling, embedding_dim)  # fmt: skip


def gru(num_classes: Size, input_shape: Sequence[Size] | None = None,
        vocab_size: VocabularySize | None = None, hidden_size: Size = 128,
        num_layers: Depth = 1, bidirectional: bool = False, dropout: Probability = 0.0,
        pooling: str = "last", embedding_dim: Size = 64) -> RecurrentNetwork:  # fmt: skip
    """GRU classifier/regressor."""
    return recurrent("gru", num_classes, input_shape, vocab_size, hidden_size, num_layers,
                     bidirectional, dropout, pooling, embedding_dim)  # fmt: skip
