"""all-MiniLM-L6-v2 in plain PyTorch: a 6-layer BERT encoder, mean pooling, L2 normalisation.

Module names follow Hugging Face's ``BertModel`` (``embeddings.word_embeddings``,
``encoder.layer.0.attention.self.query``, ...), so the package's ``model.safetensors`` loads by
name (``model.init_from=pretrained:minilm``, fathom.transfer). Written by hand because the
architecture is small and ``transformers`` is a heavy dependency that would pull its own
stack; the test checks it against sentence-transformers' embeddings. The factory builds the
architecture only (random weights): the lineage then replays without the package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fathom.errors import ConfigError
from fathom.models.transformer import check_tokens

VOCAB_SIZE, HIDDEN, LAYERS, HEADS, INTERMEDIATE, MAX_POSITIONS = 30522, 384, 6, 12, 1536, 512


class Embeddings(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB_SIZE, HIDDEN, padding_idx=0)
        self.position_embeddings = nn.Embedding(MAX_POSITIONS, HIDDEN)
        self.token_type_embeddings = nn.Embedding(2, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)  # noqa: N815 - Hugging Face's name
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        summed = self.word_embeddings(tokens) + self.position_embeddings(positions)
        summed = summed + self.token_type_embeddings.weight[0]  # one segment: type 0
        return self.dropout(self.LayerNorm(summed))


class DenseNorm(nn.Module):
    """BERT's sublayer output: dense → dropout → LayerNorm(residual + ·)."""

    def __init__(self, inputs: int, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(inputs, HIDDEN)
        self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)  # noqa: N815 - Hugging Face's name
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(hidden)))


class SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))


class Attention(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.self = SelfAttention()
        self.output = DenseNorm(HIDDEN, dropout)
        self.dropout = dropout

    def forward(self, hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        batch, length, _ = hidden.shape

        def heads(layer: nn.Linear) -> torch.Tensor:
            return layer(hidden).view(batch, length, HEADS, HIDDEN // HEADS).transpose(1, 2)

        query, key, value = heads(self.self.query), heads(self.self.key), heads(self.self.value)
        dropout = self.dropout if self.training else 0.0
        context = F.scaled_dot_product_attention(query, key, value, keep, dropout_p=dropout)
        context = context.transpose(1, 2).reshape(batch, length, HIDDEN)
        return self.output(context, hidden)


class Intermediate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(HIDDEN, INTERMEDIATE)


class Layer(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.attention = Attention(dropout)
        self.intermediate = Intermediate()
        self.output = DenseNorm(INTERMEDIATE, dropout)

    def forward(self, hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        attended = self.attention(hidden, keep)
        return self.output(F.gelu(self.intermediate.dense(attended)), attended)


class Encoder(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(dropout) for _ in range(LAYERS))


class MiniLMFeatures(nn.Module):
    """Token ids [N, T] (0 = padding) → the sentence embedding [N, 384]: the mean of the last
    layer over real tokens, L2-normalised when ``normalize`` (as sentence-transformers)."""

    def __init__(self, dropout: float = 0.1, normalize: bool = True) -> None:
        super().__init__()
        self.embeddings = Embeddings(dropout)
        self.encoder = Encoder(dropout)
        self.normalize = normalize

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tokens(tokens, VOCAB_SIZE)
        tokens = without_trailing_padding(tokens[:, :MAX_POSITIONS])
        real = tokens != 0
        keep = real[:, None, None, :]  # attend to real tokens only
        hidden = self.embeddings(tokens)
        for layer in self.encoder.layer:
            hidden = layer(hidden, keep)
        weights = real.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, p=2, dim=1) if self.normalize else pooled


def without_trailing_padding(tokens: torch.Tensor) -> torch.Tensor:
    """``tokens`` without the columns that are padding in every row: padding is masked out of
    attention and pooling, so the result is the same while a batch of short sentences costs
    their length, not ``max_length`` (2-5x on short texts). Kept whole while a graph is traced
    or exported, whose length must not be fixed to one batch's."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
        return tokens
    used = (tokens != 0).any(dim=0).nonzero()
    return tokens[:, : int(used.max()) + 1] if len(used) else tokens[:, :1]


class MiniLM(nn.Module):
    """The transfer contract: ``features`` (the embedding) and a linear ``head``; parameter
    groups are the embeddings, each of the six layers, then the head."""

    def __init__(self, num_classes: int, dropout: float = 0.1, normalize: bool = True) -> None:
        super().__init__()
        self.features = MiniLMFeatures(dropout, normalize)
        self.head = nn.Linear(HIDDEN, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tokens))

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def reset_head(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
        self.head = nn.Linear(HIDDEN, num_classes).to(self.head.weight.device)

    def parameter_groups(self) -> list[list[nn.Parameter]]:
        modules = [self.features.embeddings, *self.features.encoder.layer, self.head]
        return [list(module.parameters()) for module in modules]


def minilm(
    num_classes: int = 2, vocab_size: int = VOCAB_SIZE, dropout: float = 0.1, normalize: bool = True
) -> MiniLM:
    """all-MiniLM-L6-v2's architecture with a linear head (weights: model.init_from=pretrained:minilm)."""
    if vocab_size > VOCAB_SIZE:
        raise ConfigError(
            f"model 'minilm' reads MiniLM's own token ids ({VOCAB_SIZE} of them), but the data "
            f"has a vocabulary of {vocab_size}: set data.tokenizer=pretrained:minilm"
        )
    return MiniLM(num_classes, dropout, normalize)
