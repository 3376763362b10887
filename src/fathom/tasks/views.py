"""Augmented views for self-supervised image tasks, made on the batch's device, batched.

Two views of each image come from the same recipe with independent randomness: a random
resized crop (area and aspect ratio drawn per image, one ``affine_grid`` for the batch), then
for colour images a horizontal flip, colour jitter (probability 0.8) and greyscale
(probability 0.2), as in SimCLR; for greyscale images (MNIST) a small rotation and
brightness/contrast jitter instead of flips and colour. Flip and jitter reuse
``fathom.data.augment``; the resized crop (with the rotation in the same resampling, one
``grid_sample`` per view) and greyscale are written here: no CPU build of torchvision exists
here and ``fathom.data.augment`` has neither.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fathom.data.augment import ColorJitter, HorizontalFlip
from fathom.errors import ConfigError

Tensor = torch.Tensor
GREY_WEIGHTS = (0.299, 0.587, 0.114)


def _uniform(count: int, low: float, high: float, generator: torch.Generator | None, device):
    return torch.rand(count, generator=generator, device=device) * (high - low) + low


def resized_crop(
    inputs: Tensor,
    min_area: float,
    generator: torch.Generator | None = None,
    degrees: float = 0.0,
) -> Tensor:
    """A crop of ``min_area``..1 of each image's area, aspect ratio 3/4..4/3, resized back to
    the input size (bilinear): torchvision's RandomResizedCrop, batched. ``degrees`` also
    rotates each crop by up to that angle, in the same resampling."""
    count, device = len(inputs), inputs.device
    area = _uniform(count, min_area, 1.0, generator, device)
    log_ratio = _uniform(count, math.log(3 / 4), math.log(4 / 3), generator, device)
    ratio = log_ratio.exp()
    width = (area * ratio).sqrt().clamp(max=1.0)  # fractions of the side
    height = (area / ratio).sqrt().clamp(max=1.0)
    centre_x = _uniform(count, -1.0, 1.0, generator, device) * (1 - width)
    centre_y = _uniform(count, -1.0, 1.0, generator, device) * (1 - height)
    angle = torch.deg2rad(_uniform(count, -degrees, degrees, generator, device))
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [
            torch.stack([cos * width, -sin * height, centre_x], 1),
            torch.stack([sin * width, cos * height, centre_y], 1),
        ],
        1,
    ).to(inputs.dtype)
    grid = F.affine_grid(theta, list(inputs.shape), align_corners=False)
    return F.grid_sample(inputs, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_greyscale(inputs: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Each colour image replaced by its grey version (on all 3 channels) with probability ``p``."""
    weights = torch.tensor(GREY_WEIGHTS, device=inputs.device, dtype=inputs.dtype)
    grey = (inputs * weights.view(1, 3, 1, 1)).sum(1, keepdim=True).expand_as(inputs)
    chosen = torch.rand(len(inputs), generator=generator, device=inputs.device) < p
    return torch.where(chosen[:, None, None, None], grey, inputs)


def with_probability(
    inputs: Tensor, changed: Tensor, p: float, generator: torch.Generator | None
) -> Tensor:
    """``changed`` for a random fraction ``p`` of the images, ``inputs`` for the rest."""
    chosen = torch.rand(len(inputs), generator=generator, device=inputs.device) < p
    return torch.where(chosen[:, None, None, None], changed, inputs)


class ViewMaker:
    """``views(inputs, generator)`` -> two augmented views of an image batch (N, C, H, W).

    ``min_crop``: the smallest crop, as a fraction of the image's area (default 0.2 for colour
    images, 0.4 for greyscale ones, whose digits a small crop would cut off); ``strength``
    scales the colour jitter (SimCLR's s: 0.5 for CIFAR-10)."""

    def __init__(self, min_crop: float | None = None, strength: float = 0.5) -> None:
        if min_crop is not None and not 0.0 < min_crop <= 1.0:
            raise ConfigError(f"task.min_crop must be in (0, 1], got {min_crop}")
        if not 0.0 <= strength <= 1.0:
            raise ConfigError(f"task.strength must be between 0 and 1, got {strength}")
        self.min_crop, self.strength = min_crop, strength
        self.flip = HorizontalFlip(0.5)
        self.colour = ColorJitter(0.8 * strength, 0.8 * strength, 0.8 * strength)
        self.grey_jitter = ColorJitter(0.4 * strength, 0.4 * strength, 0.0)

    def view(self, inputs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One augmented view of every image in ``inputs``."""
        if inputs.dim() != 4:
            raise ConfigError(
                f"self-supervised image tasks need image batches (N, C, H, W), got {list(inputs.shape)}"
            )
        colour = inputs.shape[1] == 3
        min_area = self.min_crop if self.min_crop is not None else (0.2 if colour else 0.4)
        targets = torch.empty(0, device=inputs.device)
        view = resized_crop(inputs, min_area, generator, degrees=0.0 if colour else 10.0)
        if colour:
            view = self.flip(view, targets, generator)[0]
            view = with_probability(view, self.colour(view, targets, generator)[0], 0.8, generator)
            return random_greyscale(view, 0.2, generator)
        return with_probability(view, self.grey_jitter(view, targets, generator)[0], 0.8, generator)

    def views(
        self, inputs: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        return self.view(inputs, generator), self.view(inputs, generator)
