"""A convolutional variational autoencoder (Kingma & Welling, 2014).

The encoder maps an image in [-1, 1] to the mean and log-variance of a diagonal Gaussian over
the latent code; the decoder maps a code to per-pixel Bernoulli logits (pixel intensities in
[0, 1]). ``forward`` samples the code with the reparameterisation ``z = mean + std * noise``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.models.gan import check_image_size
from fathom.options import Size


class VAE(nn.Module):
    """``encode(x) -> (mean, log_variance)``, ``decode(z) -> logits``, ``forward(x) -> all three``."""

    def __init__(
        self, in_channels: int = 1, image_size: int = 28, latent_dim: int = 16, width: int = 32
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = 0  # unconditional
        self.image_shape = (in_channels, image_size, image_size)
        self.start = image_size // 4
        self.width = width
        flat = 2 * width * self.start * self.start
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, 2, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.ReLU(inplace=True),
            nn.Flatten(),
        )
        self.to_moments = nn.Linear(flat, 2 * latent_dim)
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, flat), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, in_channels, 4, 2, 1),
        )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_variance = self.to_moments(self.encoder(images)).chunk(2, dim=1)
        return mean, log_variance.clamp(-30.0, 20.0)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of each pixel (sigmoid gives intensities in [0, 1])."""
        hidden = self.from_latent(latent).view(len(latent), 2 * self.width, self.start, self.start)
        return self.decoder(hidden)

    @staticmethod
    def reparameterize(
        mean: torch.Tensor, log_variance: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``mean + exp(log_variance / 2) * noise``, differentiable in mean and log-variance."""
        noise = torch.randn_like(mean) if noise is None else noise
        return mean + (0.5 * log_variance).exp() * noise

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_variance = self.encode(images)
        return self.decode(self.reparameterize(mean, log_variance)), mean, log_variance


def vae(
    in_channels: Size = 1,
    image_size: Size | Sequence[Size] = 28,
    latent_dim: Size = 16,
    width: Size = 32,
) -> VAE:
    """A convolutional VAE for square images whose side is a multiple of 4."""
    side = check_image_size(image_size, "vae")
    if min(in_channels, latent_dim, width) < 1:
        raise ConfigError(
            f"vae sizes must be positive: in_channels={in_channels}, latent_dim={latent_dim}, "
            f"width={width}"
        )
    return VAE(in_channels, side, latent_dim, width)
