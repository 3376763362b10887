"""A small noise-prediction U-Net for DDPM/DDIM diffusion (Ho et al., 2020; Song et al., 2021).

``forward(noisy, timesteps, labels)`` predicts the noise added to an image at integer
``timesteps``. The time enters as a sinusoidal embedding through an MLP, added to every
residual block. With ``conditional=True`` a class embedding is added too; its extra last row is
the "no class" token that classifier-free guidance trains with (Ho & Salimans, 2022). Two
downsamplings: square images whose side is a multiple of 4 (28x28, 32x32).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fathom.errors import ConfigError
from fathom.models.gan import check_image_size
from fathom.options import Size


def sinusoidal_embedding(
    timesteps: torch.Tensor, dim: int, period: float = 10_000.0
) -> torch.Tensor:
    """Transformer-style sin/cos features of ``timesteps`` (N,) → (N, dim)."""
    half = dim // 2
    frequencies = torch.exp(
        -math.log(period) * torch.arange(half, device=timesteps.device, dtype=torch.float32) / half
    )
    angles = timesteps.float()[:, None] * frequencies[None]
    embedding = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(embedding, (0, dim % 2))


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResidualBlock(nn.Module):
    """norm → SiLU → conv, plus the (time, class) embedding, → norm → SiLU → conv; skip path."""

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int) -> None:
        super().__init__()
        self.first = nn.Sequential(
            _norm(in_channels), nn.SiLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        )
        self.embedding = nn.Linear(embedding_dim, out_channels)
        self.second = nn.Sequential(
            _norm(out_channels), nn.SiLU(), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        self.skip = (
            nn.Conv2d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, inputs: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        hidden = self.first(inputs) + self.embedding(embedding)[:, :, None, None]
        return self.second(hidden) + self.skip(inputs)


class UNet(nn.Module):
    """Two resolutions down (stride-2 convs), a middle block, two up (nearest + conv), skips."""

    def __init__(
        self, in_channels: int = 1, image_size: int = 28, width: int = 32, num_classes: int = 0
    ) -> None:
        super().__init__()
        self.num_classes = num_classes  # 0: unconditional; else index num_classes = "no class"
        self.image_shape = (in_channels, image_size, image_size)
        self.width = width
        embedding_dim = 4 * width
        self.time_mlp = nn.Sequential(
            nn.Linear(width, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim)
        )
        self.class_embedding = nn.Embedding(num_classes + 1, embedding_dim) if num_classes else None
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.down_block1 = ResidualBlock(width, width, embedding_dim)
        self.down1 = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.down_block2 = ResidualBlock(width, 2 * width, embedding_dim)
        self.down2 = nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1)
        self.middle = ResidualBlock(2 * width, 2 * width, embedding_dim)
        self.up2 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.up_block2 = ResidualBlock(4 * width, width, embedding_dim)
        self.up1 = nn.Conv2d(width, width, 3, padding=1)
        self.up_block1 = ResidualBlock(2 * width, width, embedding_dim)
        self.output = nn.Sequential(
            _norm(width), nn.SiLU(), nn.Conv2d(width, in_channels, 3, padding=1)
        )

    def forward(
        self, noisy: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        embedding = self.time_mlp(sinusoidal_embedding(timesteps, self.width))
        if self.class_embedding is not None:
            if labels is None:  # no label: the "no class" token
                labels = torch.full_like(timesteps, self.num_classes, dtype=torch.long)
            embedding = embedding + self.class_embedding(labels)
        skip1 = self.down_block1(self.stem(noisy), embedding)
        skip2 = self.down_block2(self.down1(skip1), embedding)
        hidden = self.middle(self.down2(skip2), embedding)
        hidden = self.up2(F.interpolate(hidden, scale_factor=2.0, mode="nearest"))
        hidden = self.up_block2(torch.cat([hidden, skip2], dim=1), embedding)
        hidden = self.up1(F.interpolate(hidden, scale_factor=2.0, mode="nearest"))
        hidden = self.up_block1(torch.cat([hidden, skip1], dim=1), embedding)
        return self.output(hidden)


def unet(
    in_channels: Size = 1,
    image_size: Size | Sequence[Size] = 28,
    num_classes: Size = 10,
    conditional: bool = False,
    width: Size = 32,
) -> UNet:
    """A small noise-prediction U-Net; ``conditional`` uses the dataset's ``num_classes``."""
    side = check_image_size(image_size, "unet")
    if min(in_channels, width) < 1:
        raise ConfigError(f"unet sizes must be positive: in_channels={in_channels}, width={width}")
    return UNet(in_channels, side, width, int(num_classes) if conditional else 0)
