"""Transformers from readable blocks: a shared token/position stack and the BERT-style classifier.

``TransformerStack`` (embeddings, positions, pre-norm blocks, final norm) is shared by the three
shapes: ``transformer_encoder`` here (classification with a CLS token or mean pooling), ``gpt`` in
gpt.py (decoder-only causal language model) and ``transformer_seq2seq`` in transformer_seq2seq.py.
Token id 0 is padding everywhere.
"""

from __future__ import annotations

import torch
from torch import nn

from fathom.errors import ConfigError, DataError, closest
from fathom.nn.attention import LayerCache, TransformerBlock
from fathom.nn.classifier import ClassifierModel
from fathom.nn.positions import RotaryPositions, additive_positions
from fathom.options import Depth, Multiplier, Probability, Size, VocabularySize

PAD_ID = 0
POOLINGS = ("cls", "mean")


def check_tokens(tokens: torch.Tensor, vocab_size: int) -> None:
    """One-line errors for inputs that are not token ids of this vocabulary."""
    if tokens.is_floating_point() or tokens.dim() != 2:
        raise DataError(
            f"expected token ids as an integer tensor [batch, length], got {tokens.dtype} "
            f"of shape {list(tokens.shape)}"
        )
    if (
        tokens.device.type == "cpu"
        and tokens.numel()
        and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size)
    ):
        raise DataError(
            f"token id {int(tokens.max())} is outside the vocabulary of {vocab_size} tokens"
        )


class TransformerStack(nn.Module):
    """Token embedding + positions → ``depth`` pre-norm blocks → final LayerNorm."""

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        depth: int,
        heads: int,
        *,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        max_length: int = 512,
        positions: str = "learned",
        bias: bool = True,
        cross_attention: bool = False,
    ) -> None:
        super().__init__()
        if vocab_size < 1 or dim < 1 or depth < 0:
            raise ConfigError(
                f"bad transformer size: vocab_size={vocab_size}, dim={dim}, depth={depth}"
            )
        self.vocab_size, self.max_length = vocab_size, max_length
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.positions = additive_positions(positions, max_length, dim)
        rotary = RotaryPositions(max_length, dim // heads) if positions == "rotary" else None
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                dim,
                heads,
                mlp_ratio=mlp_ratio,
                dropout=dropout,
                bias=bias,
                cross_attention=cross_attention,
                rotary=rotary,
            )  # fmt: skip
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, bias=bias)
        self.apply(_gpt_init)
        for name, parameter in self.named_parameters():  # GPT-2: scale residual projections
            if name.endswith(("output.weight", "layers.2.weight")):
                nn.init.normal_(parameter, std=0.02 / (2 * max(depth, 1)) ** 0.5)

    def embed(
        self, tokens: torch.Tensor, offset: int = 0, prefix: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token embeddings plus positions; ``prefix`` [B, P, dim] (e.g. a CLS vector) goes first."""
        check_tokens(tokens, self.vocab_size)
        hidden = self.token_embedding(tokens)
        if prefix is not None:
            hidden = torch.cat((prefix, hidden), dim=1)
        if self.positions is not None:
            hidden = hidden + self.positions(hidden.shape[1], offset)
        return self.embedding_dropout(hidden)

    def forward(
        self,
        hidden: torch.Tensor,
        *,
        causal: bool = False,
        padding: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_padding: torch.Tensor | None = None,
        caches: list[LayerCache] | None = None,
        return_weights: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the blocks on embedded ``hidden``; returns (normalised outputs, attention weights)."""
        maps: list[torch.Tensor] = []
        for index, block in enumerate(self.blocks):
            hidden, weights = block(
                hidden, causal=causal, padding=padding, memory=memory,
                memory_padding=memory_padding, cache=caches[index] if caches else None,
                return_weights=return_weights,
            )  # fmt: skip
            maps += weights
        return self.norm(hidden), maps


def _gpt_init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)


def padding_of(tokens: torch.Tensor) -> torch.Tensor | None:
    """True at padded positions, or None when nothing is padded (lets attention use fast kernels)."""
    padding = tokens == PAD_ID
    exporting = torch.jit.is_tracing() or torch.compiler.is_exporting()  # keep the mask in graphs
    if not exporting and not bool(padding.any()):
        return None
    first = padding[:, :1] & ~padding.all(dim=1, keepdim=True)  # an all-padding row keeps one key
    return torch.cat([first, padding[:, 1:]], dim=1)  # (no in-place op: ONNX export has none)


class EncoderFeatures(nn.Module):
    """Tokens → pooled feature vector: the CLS position's output or the mean over real tokens."""

    def __init__(self, stack: TransformerStack, pooling: str) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(
                f"pooling must be 'cls' or 'mean', got '{pooling}'{closest(pooling, POOLINGS)}"
            )
        self.pooling = pooling
        self.stack = stack
        dim = stack.token_embedding.embedding_dim
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if pooling == "cls" else None

    def encode(
        self, tokens: torch.Tensor, return_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
        padding = padding_of(tokens)
        prefix = None
        if self.cls is not None:
            prefix = self.cls.expand(tokens.shape[0], -1, -1)  # shape, not len: traced
            if padding is not None:
                padding = torch.cat((padding.new_zeros(tokens.shape[0], 1), padding), dim=1)
        hidden = self.stack.embed(tokens, prefix=prefix)
        hidden, maps = self.stack(hidden, padding=padding, return_weights=return_weights)
        return hidden, padding, maps

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden, padding, _ = self.encode(tokens)
        if self.cls is not None:
            return hidden[:, 0]
        if padding is None:
            return hidden.mean(dim=1)
        keep = (~padding).unsqueeze(-1).to(hidden.dtype)
        return (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)


class TransformerClassifier(ClassifierModel):
    """BERT-style text classifier: ``head(features(tokens))`` with the transfer contract."""

    features: EncoderFeatures

    def parameter_groups(self) -> list[list[nn.Parameter]]:
        """Embeddings (and CLS), then each block, then final norm and head: early to late."""
        stack = self.features.stack
        early = [
            *stack.token_embedding.parameters(),
            *(stack.positions or nn.Module()).parameters(),
        ]
        early += [self.features.cls] if self.features.cls is not None else []
        groups = [early, *([*block.parameters()] for block in stack.blocks)]
        groups.append([*stack.norm.parameters(), *self.head.parameters()])
        return [group for group in groups if group]

    def attention_maps(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """Self-attention weights per layer, [batch, heads, queries, keys] (CLS first if used)."""
        with torch.no_grad():
            return self.features.encode(inputs, return_weights=True)[2]


def transformer_encoder(
    vocab_size: VocabularySize,
    num_classes: Size,
    dim: Size = 128,
    depth: Depth = 2,
    heads: Depth = 4,
    mlp_ratio: Multiplier = 4.0,
    dropout: Probability = 0.1,
    max_length: Size = 512,
    positions: str = "learned",
    pooling: str = "cls",
) -> TransformerClassifier:
    """Encoder-only Transformer classifier for token sequences [batch, length] padded with 0."""
    stack = TransformerStack(
        vocab_size, dim, depth, heads, mlp_ratio=mlp_ratio, dropout=dropout,
        max_length=max_length + (pooling == "cls"), positions=positions,
    )  # fmt: skip
    features = EncoderFeatures(stack, pooling)
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))
    return TransformerClassifier(features, head)
