"""Position information for Transformers: learned, sinusoidal (added to embeddings) and rotary.

Learned and sinusoidal positions return a ``[length, dim]`` table added to token embeddings;
rotary positions (RoPE) rotate queries and keys inside attention instead. Every kind takes an
``offset``, the number of positions already in a key/value cache, for incremental decoding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fathom.errors import ConfigError, DataError

POSITION_KINDS = ("learned", "sinusoidal", "rotary")


def check_length(length: int, max_length: int) -> None:
    if length > max_length:
        raise DataError(
            f"sequence of {length} positions is longer than the model's max_length={max_length}; "
            "shorten the input or build the model with a larger max_length"
        )


class LearnedPositions(nn.Module):
    """One trained vector per position (GPT-2, BERT)."""

    def __init__(self, max_length: int, dim: int) -> None:
        super().__init__()
        self.max_length = max_length
        self.table = nn.Embedding(max_length, dim)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        check_length(offset + length, self.max_length)
        positions = torch.arange(offset, offset + length, device=self.table.weight.device)
        return self.table(positions)


class SinusoidalPositions(nn.Module):
    """Fixed sines and cosines of geometric frequencies (Vaswani et al., 2017); nothing to train."""

    def __init__(self, max_length: int, dim: int) -> None:
        super().__init__()
        self.max_length = max_length
        position = torch.arange(max_length, dtype=torch.float32).unsqueeze(1)
        frequency = torch.exp(
            torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim)
        )
        table = torch.zeros(max_length, dim)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency)[:, : dim // 2]
        self.register_buffer("table", table, persistent=False)

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        check_length(offset + length, self.max_length)
        return self.table[offset : offset + length]


class RotaryPositions(nn.Module):
    """Rotary position embedding (Su et al., RoFormer): rotates pairs of query/key channels."""

    def __init__(self, max_length: int, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ConfigError(f"rotary positions need an even head size, got {head_dim}")
        self.max_length = max_length
        inverse = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_length, dtype=torch.float32), inverse)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, values: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Rotate ``values`` of shape [batch, heads, length, head_dim] for positions offset.."""
        length = values.shape[-2]
        check_length(offset + length, self.max_length)
        cos = self.cos[offset : offset + length].to(values.dtype)
        sin = self.sin[offset : offset + length].to(values.dtype)
        even, odd = values[..., 0::2], values[..., 1::2]
        rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
        return rotated.flatten(-2)


def additive_positions(kind: str, max_length: int, dim: int) -> nn.Module | None:
    """The table added to embeddings for ``kind``, or None for rotary positions."""
    if kind not in POSITION_KINDS:
        from fathom.errors import closest

        raise ConfigError(
            f"positions must be one of {', '.join(POSITION_KINDS)}, got '{kind}'"
            f"{closest(kind, POSITION_KINDS)}"
        )
    if kind == "learned":
        return LearnedPositions(max_length, dim)
    if kind == "sinusoidal":
        return SinusoidalPositions(max_length, dim)
    return None
