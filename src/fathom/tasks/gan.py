"""Generative adversarial networks: alternating discriminator and generator updates.

The trainer runs the two phases on every batch, each with its own optimizer: first
``discriminator`` (real images vs. generated ones, the generator untouched), then ``generator``
(fool the discriminator, whose weights stay fixed). Losses (``task.loss``):

- ``non_saturating``: D minimises softplus(-D(x)) + softplus(D(G(z))); G minimises softplus(-D(G(z)))
  (Goodfellow et al., 2014);
- ``hinge``: D minimises relu(1 - D(x)) + relu(1 + D(G(z))); G minimises -D(G(z)) (use with
  ``model.spectral_norm=true``, Miyato et al., 2018);
- ``wgan_gp``: D minimises D(G(z)) - D(x) + λ·(‖∇D(x̂)‖ - 1)² on interpolates; G minimises
  -D(G(z)) (Gulrajani et al., 2017; here one critic step per generator step).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError, closest
from fathom.tasks.base import Batch
from fathom.tasks.generative import ImageGenerator, MeanMetrics, batch_labels

LOSSES = ("non_saturating", "hinge", "wgan_gp")


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No weight gradients for ``module`` inside the block (gradients still flow through it)."""
    flags = [parameter.requires_grad for parameter in module.parameters()]
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(module.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)


def check_gan_model(model: nn.Module) -> None:
    """A GAN task trains a model with ``.generator`` and ``.discriminator`` modules."""
    for part in ("generator", "discriminator"):
        if not isinstance(getattr(model, part, None), nn.Module):
            raise ConfigError(
                f"task gan needs a model with .generator and .discriminator (model.name=gan), "
                f"got {type(model).__name__}"
            )


class GAN(ImageGenerator):
    name = "gan"
    monitor = "none"  # no validation metric tells a better generator: no "best" checkpoint

    def __init__(self, info: DataInfo, loss: str = "non_saturating", gp_weight: float = 10.0):
        super().__init__(info)
        if loss not in LOSSES:
            hint = closest(loss, LOSSES) or f" (choose from {', '.join(LOSSES)})"
            raise ConfigError(f"task.loss: unknown GAN loss '{loss}'{hint}")
        if gp_weight < 0:
            raise ConfigError(f"task.gp_weight must be >= 0, got {gp_weight}")
        self.loss = loss
        self.gp_weight = gp_weight

    @classmethod
    def for_data(cls, info: DataInfo, loss: str = "non_saturating", gp_weight: float = 10.0) -> GAN:
        return cls(info, loss, gp_weight)

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        check_gan_model(model)

    def optimizer_groups(self, model: nn.Module) -> dict[str, Iterable[nn.Parameter]]:
        """Two phases per batch, in this order: the discriminator, then the generator."""
        check_gan_model(model)  # the trainer asks for the groups before it checks a batch
        return {
            "discriminator": list(model.discriminator.parameters()),
            "generator": list(model.generator.parameters()),
        }

    def fake_images(
        self, model: nn.Module, labels: torch.Tensor | None, count: int, device: torch.device
    ) -> torch.Tensor:
        noise = torch.randn(count, model.latent_dim, device=device)
        return model.generator(noise, labels)

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = self.to_unit(batch[0])
        labels = batch_labels(model, batch)
        if phase == "discriminator":
            with torch.no_grad():
                fake = self.fake_images(model, labels, len(real), real.device)
            return self.discriminator_loss(model.discriminator, real, fake, labels)
        with frozen(model.discriminator):
            fake = self.fake_images(model, labels, len(real), real.device)
            fake_logits = model.discriminator(fake, labels).float()
        if self.loss == "non_saturating":
            loss = F.softplus(-fake_logits).mean()
        else:
            loss = -fake_logits.mean()
        return loss, {}

    def discriminator_loss(
        self,
        discriminator: nn.Module,
        real: torch.Tensor,
        fake: torch.Tensor,
        labels: torch.Tensor | None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real_logits = discriminator(real, labels).float()
        fake_logits = discriminator(fake, labels).float()
        if self.loss == "non_saturating":
            loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        elif self.loss == "hinge":
            loss = F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
        else:
            loss = fake_logits.mean() - real_logits.mean()
            if self.gp_weight > 0 and torch.is_grad_enabled():
                loss = loss + self.gp_weight * gradient_penalty(discriminator, real, fake, labels)
        values = {
            "real_score": real_logits.detach().mean(),
            "fake_score": fake_logits.detach().mean(),
        }
        return loss, values

    def new_metrics(self, device: torch.device) -> MeanMetrics:
        return MeanMetrics(device)

    def evaluation_step(self, model: nn.Module, batch: Batch, metrics: MeanMetrics) -> None:
        """The discriminator's loss and scores on held-out real images and seeded fakes."""
        real = self.to_unit(batch[0])
        labels = batch_labels(model, batch)
        generator = torch.Generator(device=real.device).manual_seed(len(real))
        noise = torch.randn(len(real), model.latent_dim, device=real.device, generator=generator)
        fake = model.generator(noise, labels)
        loss, values = self.discriminator_loss(model.discriminator, real, fake, labels)
        real_logits = model.discriminator(real, labels).float()
        count = len(real)
        metrics.update(
            count,
            discriminator_loss=loss * count,
            real_score=values["real_score"] * count,
            fake_score=values["fake_score"] * count,
            real_accuracy=(real_logits > 0).float().sum(),
        )

    def sample(
        self,
        model: nn.Module,
        labels: torch.Tensor | None,
        count: int,
        generator: torch.Generator,
        **options: Any,
    ) -> torch.Tensor:
        device = next(model.parameters()).device
        noise = torch.randn(count, model.latent_dim, device=device, generator=generator)
        return (model.generator(noise, labels).float() + 1.0) / 2.0

    def generate(
        self,
        model: nn.Module,
        info: DataInfo,
        output_dir: Any,
        n: int = 64,
        label: int | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        """``n`` samples (of class ``label``, else classes in turn) from noise seeded by ``seed``."""
        pixels, labels = self.sample_images(model, n, label, seed)
        return self.write_samples(pixels, labels, output_dir)


def gradient_penalty(
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: torch.Tensor | None,
) -> torch.Tensor:
    """Mean of (‖∇ D(x̂)‖ - 1)² at random interpolates x̂ of real and fake images."""
    mix = torch.rand(len(real), 1, 1, 1, device=real.device)
    interpolates = (mix * real + (1 - mix) * fake).requires_grad_(True)
    scores = discriminator(interpolates, labels).float()
    (gradients,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    return (gradients.flatten(1).norm(dim=1) - 1.0).square().mean()
