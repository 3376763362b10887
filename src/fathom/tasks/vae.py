"""Variational autoencoders: the evidence lower bound (ELBO) with a β weight on the KL term.

Per image, ``reconstruction`` is the Bernoulli negative log-likelihood of the pixels (in [0, 1])
under the decoder's logits, summed over pixels, and ``kl`` the KL divergence of the encoder's
Gaussian from the standard normal prior, summed over latent dimensions (both in nats). The
training loss is ``reconstruction + β·kl`` (β = 1: the negative ELBO). Test metrics: ``elbo``
(nats per image, higher is better), ``reconstruction``, ``kl`` and ``bits_per_dim`` = -ELBO /
(pixels · ln 2). With grey-level (not binarised) pixels the Bernoulli likelihood is the usual
surrogate, so bits per dimension here compare VAEs with each other, not with discrete models.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError
from fathom.tasks.base import Batch
from fathom.tasks.generative import ImageGenerator, MeanMetrics, image_grid, save_png

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer


def kl_to_standard_normal(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_variance)) ‖ N(0, I)) per example, summed over dimensions."""
    return 0.5 * (mean.square() + log_variance.exp() - 1.0 - log_variance).sum(dim=1)


class VAE(ImageGenerator):
    name = "vae"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(self, info: DataInfo, beta: float = 1.0) -> None:
        super().__init__(info)
        if beta < 0:
            raise ConfigError(f"task.beta must be >= 0, got {beta}")
        self.beta = float(beta)

    @classmethod
    def for_data(cls, info: DataInfo, beta: float = 1.0) -> VAE:
        return cls(info, beta)

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        if not all(callable(getattr(model, name, None)) for name in ("encode", "decode")):
            raise ConfigError(
                f"task vae needs a model with encode() and decode() (model.name=vae), "
                f"got {type(model).__name__}"
            )

    def terms(
        self, model: nn.Module, inputs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example reconstruction NLL and KL (nats) for dataset inputs."""
        pixels = self.to_pixels(inputs)
        mean, log_variance = model.encode(pixels * 2.0 - 1.0)
        noise = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
        logits = model.decode(model.reparameterize(mean, log_variance, noise))
        reconstruction = (
            F.binary_cross_entropy_with_logits(logits.float(), pixels, reduction="none")
            .flatten(1)
            .sum(dim=1)
        )
        return reconstruction, kl_to_standard_normal(mean.float(), log_variance.float())

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        reconstruction, kl = self.terms(model, batch[0])
        loss = (reconstruction + self.beta * kl).mean()
        return loss, {"reconstruction": reconstruction.detach().mean(), "kl": kl.detach().mean()}

    def new_metrics(self, device: torch.device) -> MeanMetrics:
        return MeanMetrics(device)

    def evaluation_step(self, model: nn.Module, batch: Batch, metrics: MeanMetrics) -> None:
        """ELBO terms with the encoder's sampled code (seeded, so evaluations repeat exactly)."""
        generator = torch.Generator(device=batch[0].device).manual_seed(len(batch[0]))
        reconstruction, kl = self.terms(model, batch[0], generator)
        pixels = math.prod(batch[0].shape[1:])
        negative_elbo = reconstruction + kl
        metrics.update(
            len(batch[0]),
            loss=(reconstruction + self.beta * kl).sum(),
            elbo=-negative_elbo.sum(),
            reconstruction=reconstruction.sum(),
            kl=kl.sum(),
            bits_per_dim=negative_elbo.sum() / (pixels * math.log(2.0)),
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
        latent = torch.randn(count, model.latent_dim, device=device, generator=generator)
        return torch.sigmoid(model.decode(latent).float())

    def generate(
        self,
        model: nn.Module,
        info: DataInfo,
        output_dir: Any,
        n: int = 64,
        label: int | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        """``n`` images decoded from standard-normal codes seeded by ``seed`` (no classes)."""
        pixels, labels = self.sample_images(model, n, label, seed)
        return self.write_samples(pixels, labels, output_dir)

    @torch.no_grad()
    def report_figures(self, trainer: Trainer, run_dir: Path) -> list[str]:
        """Reconstructions of held-out images and interpolations between their codes."""
        inputs = trainer.validation_inputs(16)
        if inputs is None or len(inputs) < 2:
            return []
        model = trainer.ema.shadow if trainer.ema is not None else trainer.model
        was_training = model.training
        model.eval()
        pixels = self.to_pixels(inputs[:16])
        mean, _ = model.encode(pixels * 2.0 - 1.0)
        reconstructed = torch.sigmoid(model.decode(mean).float())
        pairs = torch.stack([pixels, reconstructed], dim=1).flatten(0, 1)
        save_png(image_grid(pairs, 8), run_dir / "plots" / "vae_reconstructions.png")
        steps = torch.linspace(0, 1, 10, device=mean.device)[None, :, None]
        starts, ends = mean[0:8:2], mean[1:8:2]
        codes = starts[:, None] * (1 - steps) + ends[:, None] * steps
        path = torch.sigmoid(model.decode(codes.flatten(0, 1)).float())
        save_png(image_grid(path, 10), run_dir / "plots" / "vae_interpolations.png")
        model.train(was_training)
        return ["plots/vae_reconstructions.png", "plots/vae_interpolations.png"]
