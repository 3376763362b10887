"""Denoising diffusion: DDPM training (Ho et al., 2020) and DDIM sampling (Song et al., 2021).

Training noises an image in closed form, ``x_t = √ᾱ_t·x_0 + √(1-ᾱ_t)·ε`` at a random step ``t``,
and regresses the model's prediction of ``ε`` (mean squared error). Noise schedules
(``task.noise_schedule``): ``linear`` β from 1e-4 to 0.02 over ``task.timesteps`` steps, or
``cosine`` (Nichol & Dhariwal, 2021). Sampling walks a sub-sequence of ``steps`` timesteps with
the DDIM update (``eta=0``: deterministic given the starting noise). A class-conditional model
is trained with its labels replaced by the "no class" token with probability
``task.label_dropout``, so one network gives both predictions that classifier-free guidance
mixes: ``ε = ε_none + guidance·(ε_class - ε_none)`` (``guidance=1``: plain conditional).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError, closest
from fathom.tasks.base import Batch
from fathom.tasks.generative import ImageGenerator, MeanMetrics, batch_labels

NOISE_SCHEDULES = ("linear", "cosine")


def make_betas(name: str, timesteps: int) -> torch.Tensor:
    """β_1..β_T (float64) of the ``linear`` or ``cosine`` schedule."""
    if name == "linear":
        scale = 1000.0 / timesteps  # keeps the schedule's end points comparable for any T
        return torch.linspace(
            scale * 1e-4, min(scale * 0.02, 0.999), timesteps, dtype=torch.float64
        )
    offset = 0.008
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    cumulative = torch.cos((steps + offset) / (1 + offset) * math.pi / 2).square()
    cumulative = cumulative / cumulative[0]
    return (1 - cumulative[1:] / cumulative[:-1]).clamp(max=0.999)


class Diffusion(ImageGenerator):
    name = "diffusion"
    monitor = "loss"
    monitor_mode = "min"

    def __init__(
        self,
        info: DataInfo,
        noise_schedule: str = "cosine",
        timesteps: int = 1000,
        label_dropout: float = 0.1,
        guidance: float = 2.0,
        steps: int = 50,
        eta: float = 0.0,
    ) -> None:
        super().__init__(info)
        if noise_schedule not in NOISE_SCHEDULES:
            hint = closest(noise_schedule, NOISE_SCHEDULES) or " (choose linear or cosine)"
            raise ConfigError(f"task.noise_schedule: unknown schedule '{noise_schedule}'{hint}")
        if timesteps < 2:
            raise ConfigError(f"task.timesteps must be at least 2, got {timesteps}")
        if not 0.0 <= label_dropout < 1.0:
            raise ConfigError(f"task.label_dropout must be in [0, 1), got {label_dropout}")
        self.timesteps = int(timesteps)
        self.label_dropout = float(label_dropout)
        self.default_guidance = float(guidance)
        self.default_steps = self.check_steps(steps)
        self.eta = float(eta)
        self.betas = make_betas(noise_schedule, self.timesteps)
        self.alpha_bars = torch.cumprod(1.0 - self.betas, dim=0)

    @classmethod
    def for_data(cls, info: DataInfo, **options: Any) -> Diffusion:
        return cls(info, **options)

    def grid_options(self) -> dict[str, Any]:
        return {"steps": min(10, self.default_steps)}  # per-epoch grids: a cheaper sampler

    def check_steps(self, steps: int) -> int:
        if not 1 <= int(steps) <= self.timesteps:
            raise ConfigError(f"--steps must be in 1..{self.timesteps}, got {steps}")
        return int(steps)

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        if not hasattr(model, "image_shape") or not hasattr(model, "num_classes"):
            raise ConfigError(
                f"task diffusion needs a noise-prediction model (model.name=unet), "
                f"got {type(model).__name__}"
            )

    def alpha_bar(self, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """ᾱ_t for each example, shaped to broadcast over images like ``like``."""
        values = self.alpha_bars.to(like.device)[timesteps.long()]
        return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def add_noise(
        self, clean: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """The forward process in closed form: √ᾱ_t·x_0 + √(1-ᾱ_t)·ε."""
        alpha_bar = self.alpha_bar(timesteps, clean)
        return alpha_bar.sqrt() * clean + (1.0 - alpha_bar).sqrt() * noise

    def denoising_loss(
        self,
        model: nn.Module,
        batch: Batch,
        generator: torch.Generator | None = None,
        drop_labels: bool = True,
    ) -> torch.Tensor:
        """Per-example mean squared error of the predicted noise."""
        clean = self.to_unit(batch[0])
        count, device = len(clean), clean.device
        timesteps = torch.randint(0, self.timesteps, (count,), device=device, generator=generator)
        noise = torch.randn(clean.shape, device=device, generator=generator)
        labels = batch_labels(model, batch)
        if labels is not None and drop_labels and self.label_dropout > 0:
            dropped = torch.rand(count, device=device, generator=generator) < self.label_dropout
            labels = torch.where(dropped, torch.full_like(labels, model.num_classes), labels)
        predicted = model(self.add_noise(clean, timesteps, noise), timesteps, labels)
        return F.mse_loss(predicted.float(), noise, reduction="none").flatten(1).mean(dim=1)

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.denoising_loss(model, batch).mean(), {}

    def new_metrics(self, device: torch.device) -> MeanMetrics:
        return MeanMetrics(device)

    def evaluation_step(self, model: nn.Module, batch: Batch, metrics: MeanMetrics) -> None:
        """Noise-prediction error at seeded steps and noise, with the true labels."""
        generator = torch.Generator(device=batch[0].device).manual_seed(len(batch[0]))
        losses = self.denoising_loss(model, batch, generator, drop_labels=False)
        metrics.update(len(losses), loss=losses.sum())

    def predict_noise(
        self,
        model: nn.Module,
        noisy: torch.Tensor,
        timestep: int,
        labels: torch.Tensor | None,
        guidance: float,
    ) -> torch.Tensor:
        """ε(x_t, t, class), mixed with ε(x_t, t, no class) by classifier-free guidance."""
        timesteps = torch.full((len(noisy),), timestep, device=noisy.device, dtype=torch.long)
        if labels is None or guidance == 1.0:
            return model(noisy, timesteps, labels).float()
        unconditional = torch.full_like(labels, model.num_classes)
        both = model(
            torch.cat([noisy, noisy]), torch.cat([timesteps, timesteps]),
            torch.cat([labels, unconditional]),
        ).float()  # fmt: skip
        conditional, free = both.chunk(2)
        return free + guidance * (conditional - free)

    def ddim_timesteps(self, steps: int) -> list[int]:
        """``steps`` timesteps from T-1 down to 0, evenly spaced."""
        points = torch.linspace(self.timesteps - 1, 0, self.check_steps(steps)).round().long()
        return sorted(set(points.tolist()), reverse=True)

    def sample(
        self,
        model: nn.Module,
        labels: torch.Tensor | None,
        count: int,
        generator: torch.Generator,
        steps: int | None = None,
        guidance: float | None = None,
        eta: float | None = None,
    ) -> torch.Tensor:
        """DDIM from pure noise through ``steps`` timesteps; pixels in [0, 1]."""
        device = next(model.parameters()).device
        guidance = self.default_guidance if guidance is None else float(guidance)
        eta = self.eta if eta is None else float(eta)
        schedule = self.ddim_timesteps(steps or self.default_steps)
        images = torch.randn(count, *model.image_shape, device=device, generator=generator)
        alpha_bars = self.alpha_bars.to(device=device, dtype=torch.float32)
        for index, timestep in enumerate(schedule):
            previous = schedule[index + 1] if index + 1 < len(schedule) else -1
            alpha_bar = alpha_bars[timestep]
            alpha_bar_previous = (
                alpha_bars[previous] if previous >= 0 else alpha_bars.new_tensor(1.0)
            )
            noise = self.predict_noise(model, images, timestep, labels, guidance)
            clean = ((images - (1 - alpha_bar).sqrt() * noise) / alpha_bar.sqrt()).clamp(-1, 1)
            noise = (images - alpha_bar.sqrt() * clean) / (1 - alpha_bar).sqrt()
            sigma = (
                eta
                * (
                    (1 - alpha_bar_previous)
                    / (1 - alpha_bar)
                    * (1 - alpha_bar / alpha_bar_previous)
                ).sqrt()
            )
            direction = (1 - alpha_bar_previous - sigma**2).clamp_min(0).sqrt() * noise
            images = alpha_bar_previous.sqrt() * clean + direction
            if eta > 0 and previous >= 0:
                images = images + sigma * torch.randn(
                    images.shape, device=device, generator=generator
                )
        return (images + 1.0) / 2.0

    def generate(
        self,
        model: nn.Module,
        info: DataInfo,
        output_dir: Any,
        n: int = 64,
        label: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        """``n`` DDIM samples (``steps`` steps; ``guidance`` for class-conditional models)."""
        if steps is not None:
            self.check_steps(steps)
        if guidance is not None and not int(getattr(model, "num_classes", 0) or 0):
            raise ConfigError(
                "--guidance needs a class-conditional model (train it with model.conditional=true)"
            )
        pixels, labels = self.sample_images(model, n, label, seed, steps=steps, guidance=guidance)
        summary = self.write_samples(pixels, labels, output_dir)
        return {**summary, "steps": len(self.ddim_timesteps(steps or self.default_steps))}
