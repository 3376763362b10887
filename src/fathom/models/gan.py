"""DCGAN: a transposed-convolution generator and a convolutional discriminator in one module.

``GAN`` holds ``.generator`` and ``.discriminator`` so a run saves, loads and resumes them as one
model; the GAN task trains them in two phases with two optimizers. Images are in [-1, 1]
(``tanh``). Sizes divisible by 4 work (28x28 MNIST, 32x32 CIFAR): the generator starts from a
``size/4`` map and doubles it twice. ``conditional=True`` adds a class embedding to the
generator's noise and a projection term to the discriminator (Miyato & Koyama, 2018);
``spectral_norm=True`` normalises the discriminator's layers (use it with the hinge loss).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from fathom.errors import ConfigError
from fathom.options import Size


def check_image_size(image_size: int | Sequence[int], model: str) -> int:
    """The side of a square image whose side is a multiple of 4, else a one-line ConfigError."""
    sides = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(sides) != 2 or sides[0] != sides[1] or int(sides[0]) % 4 or int(sides[0]) < 8:
        raise ConfigError(
            f"model '{model}' needs square images whose side is a multiple of 4 (28, 32, ...), "
            f"got image_size={image_size}"
        )
    return int(sides[0])


class Generator(nn.Module):
    """Noise (and a class) → image: linear to a (2w, s/4, s/4) map, two upsampling blocks, tanh."""

    def __init__(
        self, latent_dim: int, out_channels: int, image_size: int, width: int, num_classes: int
    ) -> None:
        super().__init__()
        self.start = image_size // 4
        self.width = width
        self.embedding = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * self.start * self.start, bias=False),
            nn.BatchNorm1d(2 * width * self.start * self.start),
            nn.ReLU(inplace=True),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, out_channels, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embedding is not None:
            if labels is None:
                raise ConfigError("this generator is class-conditional: pass labels")
            noise = noise * self.embedding(labels)
        hidden = self.project(noise).view(len(noise), 2 * self.width, self.start, self.start)
        return self.upsample(hidden)


class Discriminator(nn.Module):
    """Image (and a class) → one logit: two strided convolutions, then a linear layer."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        width: int,
        num_classes: int,
        spectral_norm: bool,
    ) -> None:
        super().__init__()

        def wrap(layer: nn.Module) -> nn.Module:
            return add_spectral_norm(layer) if spectral_norm else layer

        middle: nn.Module = nn.Identity() if spectral_norm else nn.BatchNorm2d(2 * width)
        self.features = nn.Sequential(
            wrap(nn.Conv2d(in_channels, width, 4, 2, 1)),
            nn.LeakyReLU(0.2, inplace=True),
            wrap(nn.Conv2d(width, 2 * width, 4, 2, 1, bias=spectral_norm)),
            middle,
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
        )
        flat = 2 * width * (image_size // 4) ** 2
        self.output = wrap(nn.Linear(flat, 1))
        self.embedding = wrap(nn.Embedding(num_classes, flat)) if num_classes else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.features(images)
        logits = self.output(hidden).squeeze(1)
        if self.embedding is not None:
            if labels is None:
                raise ConfigError("this discriminator is class-conditional: pass labels")
            logits = logits + (self.embedding(labels) * hidden).sum(dim=1)
        return logits


class GAN(nn.Module):
    """``generator`` and ``discriminator``; ``forward(noise, labels)`` generates images in [-1, 1]."""

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        latent_dim: int = 64,
        width: int = 64,
        num_classes: int = 0,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes  # 0: unconditional
        self.image_shape = (in_channels, image_size, image_size)
        self.generator = Generator(latent_dim, in_channels, image_size, width, num_classes)
        self.discriminator = Discriminator(
            in_channels, image_size, width, num_classes, spectral_norm
        )
        dcgan_initialize(self)
        if self.generator.embedding is not None:  # multiplies the noise: keep it of unit scale
            nn.init.normal_(self.generator.embedding.weight, 1.0, 0.5)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(noise, labels)


@torch.no_grad()
def dcgan_initialize(model: nn.Module) -> None:
    """DCGAN's initialisation (Radford et al., 2016): weights ~ N(0, 0.02), norm scales ~ N(1, 0.02).

    Spectral-normalised layers are initialised through their ``original`` weight; embeddings too,
    so the discriminator's projection term starts small.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            parametrized = getattr(module, "parametrizations", None)
            weight = parametrized.weight.original if parametrized is not None else module.weight
            weight.normal_(0.0, 0.02)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.weight.normal_(1.0, 0.02)
            module.bias.zero_()


def gan(
    in_channels: Size = 1,
    image_size: Size | Sequence[Size] = 28,
    num_classes: Size = 10,
    conditional: bool = False,
    latent_dim: Size = 64,
    width: Size = 64,
    spectral_norm: bool = False,
) -> GAN:
    """A DCGAN for ``image_size`` images; ``conditional`` uses the dataset's ``num_classes``."""
    side = check_image_size(image_size, "gan")
    if min(in_channels, latent_dim, width) < 1:
        raise ConfigError(
            f"gan sizes must be positive: in_channels={in_channels}, latent_dim={latent_dim}, "
            f"width={width}"
        )
    classes = int(num_classes) if conditional else 0
    return GAN(in_channels, side, latent_dim, width, classes, spectral_norm)
