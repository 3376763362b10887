"""Common corruptions in the style of CIFAR-10-C (Hendrycks & Dietterich 2019), generated here
in NumPy/PyTorch (never downloaded), deterministic for a seed.

Each corruption maps pixels ``[N, C, H, W]`` in [0, 1] to pixels of the same shape in [0, 1]
at severity 1-5. Where the operation is the same, the severities are CIFAR-10-C's own constants
(``make_cifar_c.py``, made for 32x32 images; ImageNet-C's are about twice as strong): Gaussian,
shot and impulse noise, defocus radii, contrast, brightness (added to the HSV value), JPEG
quality and pixelation. Motion blur, the elastic warp and fog are simplified to run on a CPU in
a few seconds (a line kernel, a smoothed random displacement field, octaves of upsampled noise)
with severities of our own. The mean corruption error is the unnormalised mean error over
corruptions and severities (no AlexNet baseline here).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fathom.errors import ConfigError, closest

SEVERITIES = (1, 2, 3, 4, 5)
Corruption = Callable[[torch.Tensor, int, np.random.Generator], torch.Tensor]


def _noise(pixels: torch.Tensor, rng: np.random.Generator, kind: str, scale: float) -> np.ndarray:
    values = pixels.numpy()
    if kind == "gaussian":
        return values + rng.normal(size=values.shape, scale=scale)
    return rng.poisson(values * scale) / scale


def gaussian_noise(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    scale = (0.04, 0.06, 0.08, 0.09, 0.10)[severity - 1]
    return torch.from_numpy(_noise(pixels, rng, "gaussian", scale)).float()


def shot_noise(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    photons = (500, 250, 100, 75, 50)[severity - 1]
    return torch.from_numpy(_noise(pixels, rng, "poisson", photons)).float()


def impulse_noise(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    amount = (0.01, 0.02, 0.03, 0.05, 0.07)[severity - 1]
    draw = rng.random(size=tuple(pixels.shape))
    values = pixels.numpy().copy()
    values[draw < amount / 2] = 0.0
    values[(draw >= amount / 2) & (draw < amount)] = 1.0
    return torch.from_numpy(values).float()


def _convolve(pixels: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each channel convolved with ``kernel`` (sums to 1), edges reflected."""
    channels = pixels.shape[1]
    size = kernel.shape[-1]
    padded = F.pad(
        pixels, [size // 2] * 4, mode="reflect" if size // 2 < pixels.shape[-1] else "replicate"
    )
    weight = kernel.float().expand(channels, 1, size, size).contiguous()
    return F.conv2d(padded, weight, groups=channels)


def defocus_blur(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    """A disk of CIFAR-10-C's radius, anti-aliased by a 3x3 Gaussian of its ``alias`` width."""
    radius, alias = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))[severity - 1]
    reach = math.ceil(radius) + 1
    grid = torch.arange(-reach, reach + 1).float()
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2).float()
    gauss = torch.exp(-(torch.arange(-1, 2).float() ** 2) / (2 * alias**2))
    smoothing = (gauss[:, None] * gauss[None, :]).view(1, 1, 3, 3)
    kernel = F.conv2d(disk.view(1, 1, *disk.shape), smoothing / smoothing.sum(), padding=1)[0, 0]
    return _convolve(pixels, kernel / kernel.sum())


def motion_blur(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    length = (3, 5, 7, 9, 11)[severity - 1]
    angle = rng.uniform(-math.pi / 4, math.pi / 4)
    kernel = torch.zeros(length, length)
    centre = length // 2
    for step in np.linspace(-centre, centre, 4 * length):
        x = int(round(centre + step * math.cos(angle)))
        y = int(round(centre + step * math.sin(angle)))
        kernel[y, x] = 1.0
    return _convolve(pixels, kernel / kernel.sum())


def contrast(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    factor = (0.75, 0.5, 0.4, 0.3, 0.15)[severity - 1]
    mean = pixels.mean(dim=(1, 2, 3), keepdim=True)
    return (pixels - mean) * factor + mean


def brightness(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    """CIFAR-10-C's shift of the HSV value (the largest channel), hue and saturation kept: each
    pixel's channels scale by new value / value; a black pixel becomes grey."""
    value = pixels.amax(dim=1, keepdim=True)
    brighter = (value + (0.05, 0.1, 0.15, 0.2, 0.3)[severity - 1]).clamp(max=1.0)
    scale = brighter / value.clamp(min=1e-12)
    return torch.where(value > 0, pixels * scale, brighter.expand_as(pixels))


def jpeg(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    quality = (80, 65, 58, 50, 40)[severity - 1]
    result = []
    for image in (pixels.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy():
        grey = image.shape[2] == 1
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if grey else image).save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer))
        result.append(decoded[..., None] if grey else decoded)
    return torch.from_numpy(np.stack(result)).permute(0, 3, 1, 2).float() / 255


def pixelate(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    """Down by CIFAR-10-C's factor and back up, both with box filters (Pillow's BOX)."""
    factor = (0.95, 0.9, 0.85, 0.75, 0.65)[severity - 1]
    result = []
    for image in pixels.permute(0, 2, 3, 1).numpy():
        height, width, channels = image.shape
        planes = []
        for plane in np.moveaxis(image, -1, 0):
            small = Image.fromarray(plane).resize(
                (max(1, int(width * factor)), max(1, int(height * factor))), Image.BOX
            )
            planes.append(np.asarray(small.resize((width, height), Image.BOX)))
        result.append(np.stack(planes))
    return torch.from_numpy(np.stack(result)).float()


def _smooth_field(shape: tuple[int, ...], rng: np.random.Generator, cells: int) -> torch.Tensor:
    """Random values on a coarse ``cells``² grid, bicubically upsampled to ``shape`` [N, C, H, W]."""
    coarse = torch.from_numpy(rng.uniform(-1, 1, size=(shape[0], shape[1], cells, cells))).float()
    return F.interpolate(coarse, size=shape[-2:], mode="bicubic", align_corners=True)


def elastic(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    strength = (0.04, 0.06, 0.08, 0.10, 0.12)[severity - 1]  # of the image width
    count, _, height, width = pixels.shape
    field = _smooth_field((count, 2, height, width), rng, 4) * strength * 2
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij"
    )
    grid = torch.stack([xs, ys], dim=-1).expand(count, height, width, 2) + field.permute(0, 2, 3, 1)
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=True)


def fog(pixels: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    density, fade = ((0.3, 0.8), (0.4, 0.7), (0.5, 0.65), (0.6, 0.6), (0.75, 0.5))[severity - 1]
    count, _, height, width = pixels.shape
    haze = sum(_smooth_field((count, 1, height, width), rng, cells) / 2**octave
               for octave, cells in enumerate((3, 6, 12)))  # fmt: skip
    haze = (haze - haze.amin(dim=(2, 3), keepdim=True)) / (
        haze.amax(dim=(2, 3), keepdim=True) - haze.amin(dim=(2, 3), keepdim=True) + 1e-8
    )
    maximum = pixels.amax(dim=(1, 2, 3), keepdim=True)
    return (pixels * fade + density * haze) * maximum / (maximum * fade + density)


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "motion_blur": motion_blur, "contrast": contrast,
    "brightness": brightness, "jpeg": jpeg, "pixelate": pixelate, "elastic": elastic, "fog": fog,
}  # fmt: skip


def corrupt(pixels: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """``pixels`` [N, C, H, W] in [0, 1] corrupted by ``name`` at ``severity`` (1-5), seeded."""
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption '{name}'{closest(name, list(CORRUPTIONS))}")
    if severity not in SEVERITIES:
        raise ConfigError(f"corruption severity must be 1-5, got {severity}")
    if pixels.dim() != 4:
        raise ConfigError(f"corruptions take images [N, C, H, W], got shape {list(pixels.shape)}")
    rng = np.random.default_rng([seed, list(CORRUPTIONS).index(name), severity])
    return CORRUPTIONS[name](pixels.detach().float().cpu(), severity, rng).clamp(0, 1)
