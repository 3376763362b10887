"""Vision Transformer (Dosovitskiy et al., 2021): patch embedding, class token, pre-norm blocks.

An image is cut into ``patch_size`` squares (a strided convolution embeds each), a learned class
token and learned position embeddings are added, and pre-norm Transformer blocks
(``x + attention(norm(x))``, ``x + mlp(norm(x))``) mix the tokens; the class token's final,
normalised vector is the feature. Attention runs through
``torch.nn.functional.scaled_dot_product_attention`` (fused kernels where the device has them);
``attention_maps`` recomputes each block's weights with an explicit softmax, only when asked.
An image whose sides are not multiples of ``patch_size`` is zero-padded on the right and bottom,
so any size works (8 px digits are one 16 px patch for ``vit_s16``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fathom.errors import ConfigError
from fathom.nn.classifier import ClassifierModel
from fathom.options import Depth, Multiplier, Probability, Size


class PatchEmbedding(nn.Module):
    """Image (N, C, H, W) → tokens (N, 1 + patches, dim): class token first, positions added."""

    def __init__(
        self, in_channels: int, dim: int, patch_size: int, image_size: tuple[int, int]
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.grid = tuple(math.ceil(side / patch_size) for side in image_size)
        self.projection = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        nn.init.trunc_normal_(self.class_token, std=0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        rows, columns = self.grid
        extra_height = rows * self.patch_size - height
        extra_width = columns * self.patch_size - width
        if extra_height < 0 or extra_width < 0:
            raise ValueError(
                f"this ViT was built for images up to {rows * self.patch_size}x"
                f"{columns * self.patch_size}, got {height}x{width}"
            )
        if extra_height or extra_width:
            images = F.pad(images, (0, extra_width, 0, extra_height))
        tokens = self.projection(images).flatten(2).transpose(1, 2)
        class_token = self.class_token.expand(len(tokens), -1, -1).to(tokens.dtype)
        return torch.cat([class_token, tokens], dim=1) + self.position.to(tokens.dtype)


class SelfAttention(nn.Module):
    """Multi-head self-attention; ``weights`` gives the (N, heads, queries, keys) softmax."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.projection = nn.Linear(dim, dim)
        self.dropout = dropout

    def _split(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length, dim = tokens.shape
        qkv = self.qkv(tokens).view(batch, length, 3, self.heads, dim // self.heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return query, key, value

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        query, key, value = self._split(tokens)
        dropout = self.dropout if self.training else 0.0
        mixed = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout)
        return self.projection(mixed.transpose(1, 2).flatten(2))

    def weights(self, tokens: torch.Tensor) -> torch.Tensor:
        query, key, _ = self._split(tokens)
        scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
        return scores.float().softmax(dim=-1)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attention(norm(x))``, then ``x + mlp(norm(x))`` (GELU MLP)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.attention(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))


class ClassTokenFeatures(nn.Module):
    """Final layer norm, then the class token's vector: (N, tokens, dim) → (N, dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.norm(tokens[:, 0])


class VisionTransformer(ClassifierModel):
    """``features``: patch embedding, blocks, class-token norm; ``head``: a linear layer."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        patch_size: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        blocks = [TransformerBlock(dim, heads, mlp_ratio, dropout) for _ in range(depth)]
        features = nn.Sequential(
            PatchEmbedding(in_channels, dim, patch_size, image_size),
            *blocks,
            ClassTokenFeatures(dim),
        )
        super().__init__(features, nn.Linear(dim, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.head.weight)  # starts at uniform predictions, as in the paper

    def attention_maps(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """Each block's attention weights, (N, heads, queries, keys) with the class token first."""
        tokens = self.features[0](inputs)
        maps = []
        for block in self.features[1:-1]:
            maps.append(block.attention.weights(block.norm1(tokens)))
            tokens = block(tokens)
        return maps


def vit(
    in_channels: Size = 3,
    num_classes: Size = 10,
    image_size: Size | Sequence[Size] = 32,
    patch_size: Size = 4,
    dim: Size = 192,
    depth: Depth = 6,
    heads: Depth = 3,
    mlp_ratio: Multiplier = 4.0,
    dropout: Probability = 0.0,
) -> VisionTransformer:
    """A Vision Transformer of any size; ``dim`` must divide into ``heads``."""
    sides = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(sides) != 2 or min(sides) < 1:
        raise ConfigError(f"model.image_size must be a size or [height, width], got {image_size}")
    if min(patch_size, dim, depth, heads) < 1 or dim % heads:
        raise ConfigError(
            f"model.dim ({dim}) must be a positive multiple of model.heads ({heads}), and "
            f"patch_size ({patch_size}) and depth ({depth}) positive"
        )
    if mlp_ratio <= 0 or not 0.0 <= dropout < 1.0:
        raise ConfigError(
            f"model.mlp_ratio must be > 0 and dropout in [0, 1): {mlp_ratio}, {dropout}"
        )
    return VisionTransformer(
        in_channels,
        num_classes,
        (int(sides[0]), int(sides[1])),
        patch_size,
        dim,
        depth,
        heads,
        mlp_ratio,
        dropout,
    )


def vit_tiny(
    in_channels: Size = 3,
    num_classes: Size = 10,
    image_size: Size | Sequence[Size] = 32,
    patch_size: Size = 4,
    dim: Size = 192,
    depth: Depth = 6,
    heads: Depth = 3,
    mlp_ratio: Multiplier = 2.0,
    dropout: Probability = 0.0,
) -> VisionTransformer:
    """ViT for 28-32 px images: 4 px patches (64 tokens at 32 px), 6 blocks of width 192 (1.8M)."""
    return vit(
        in_channels, num_classes, image_size, patch_size, dim, depth, heads, mlp_ratio, dropout
    )


def vit_s16(
    in_channels: Size = 3,
    num_classes: Size = 1000,
    image_size: Size | Sequence[Size] = 224,
    patch_size: Size = 16,
    dim: Size = 384,
    depth: Depth = 12,
    heads: Depth = 6,
    mlp_ratio: Multiplier = 4.0,
    dropout: Probability = 0.0,
) -> VisionTransformer:
    """ViT-S/16 for 224 px images: 16 px patches (196 tokens), 12 blocks of width 384 (22M)."""
    return vit(
        in_channels, num_classes, image_size, patch_size, dim, depth, heads, mlp_ratio, dropout
    )
