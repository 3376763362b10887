"""Batched augmentation on the batch's own device (torchvision has no CPU build here).

Each transform is called as ``transform(inputs, targets, generator) -> (inputs, targets)`` on a
whole batch, ``inputs`` of shape (N, C, H, W), and draws all its randomness from ``generator``
(on the batch's device), so the same seed gives the same batch. Nothing loops over examples and
nothing waits for the device. Inputs are usually normalised to mean 0, so padding and erased areas
are filled with 0. ``Mixup`` and ``CutMix`` turn integer targets into soft (N, num_classes) ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from fathom.config import call_with_checked_kwargs
from fathom.data.loader import Batch, Transform
from fathom.errors import ConfigError
from fathom.registry import AUGMENTATIONS

Tensor = torch.Tensor


def _check_images(inputs: Tensor, name: str) -> None:
    if inputs.dim() != 4:
        raise ConfigError(
            f"data.augment.{name} needs image batches (N, C, H, W), got shape {list(inputs.shape)}"
        )


def _check_range(name: str, value: float, low: float, high: float = float("inf")) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        bounds = f"between {low} and {high}" if high != float("inf") else f"at least {low}"
        raise ConfigError(f"{name} must be a number {bounds}, got {value!r}")


def _uniform(
    count: int, low: float, high: float, generator: torch.Generator, device: torch.device
) -> Tensor:
    return torch.rand(count, generator=generator, device=device) * (high - low) + low


def _beta(alpha: float, generator: torch.Generator, device: torch.device) -> Tensor:
    """One Beta(alpha, alpha) sample as a 0-d tensor, drawn from ``generator`` without a sync."""
    # torch.distributions takes no generator; _standard_gamma does, on CPU and CUDA.
    gammas = torch._standard_gamma(
        torch.full((2,), float(alpha), device=device), generator=generator
    )
    return gammas[0] / gammas.sum().clamp_min(torch.finfo(gammas.dtype).tiny)


class AugmentTransform:
    """Base of the transforms here: a config ``name`` and a repr listing the options."""

    name = ""

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({options})"


class RandomCrop(AugmentTransform):
    """Pad each side with ``padding`` zeros, then crop back to the original size at a random offset."""

    name = "crop"

    def __init__(self, padding: int = 4) -> None:
        _check_range("padding", padding, 0)
        self.padding = int(padding)

    def __call__(self, inputs: Tensor, targets: Tensor, generator: torch.Generator) -> Batch:
        _check_images(inputs, self.name)
        if self.padding == 0:
            return inputs, targets
        count, _, height, width = inputs.shape
        padded = F.pad(inputs, (self.padding,) * 4)
        # Every crop as a view (N, C, rows, columns, H, W); pick one per example.
        windows = padded.unfold(2, height, 1).unfold(3, width, 1)
        shifts = torch.randint(
            0, 2 * self.padding + 1, (2, count), generator=generator, device=inputs.device
        )
        examples = torch.arange(count, device=inputs.device)
        return windows[examples, :, shifts[0], shifts[1]], targets


class HorizontalFlip(AugmentTransform):
    """Mirror each image left-right with probability ``p``."""

    name = "flip"

    def __init__(self, p: float = 0.5) -> None:
        _check_range("p", p, 0.0, 1.0)
        self.p = float(p)

    def __call__(self, inputs: Tensor, targets: Tensor, generator: torch.Generator) -> Batch:
        _check_images(inputs, self.name)
        flip = torch.rand(len(inputs), generator=generator, device=inputs.device) < self.p
        return torch.where(flip[:, None, None, None], inputs.flip(3), inputs), targets


class RandomAffine(AugmentTransform):
    """Rotate by up to ``degrees``, shift by up to ``translate`` of the size, zoom by ``scale``."""

    name = "affine"

    def __init__(
        self,
        degrees: float = 10.0,
        translate: float = 0.1,
        scale: Sequence[float] = (0.9, 1.1),
    ) -> None:
        _check_range("degrees", degrees, 0.0, 180.0)
        _check_range("translate", translate, 0.0, 1.0)
        if not isinstance(scale, Sequence) or len(scale) != 2:
            raise ConfigError(f"scale must be [low, high], got {scale!r}")
        for bound in scale:
            _check_range("scale", bound, 1e-3)
        self.degrees, self.translate = float(degrees), float(translate)
        self.scale = (float(min(scale)), float(max(scale)))

    def __call__(self, inputs: Tensor, targets: Tensor, generator: torch.Generator) -> Batch:
        _check_images(inputs, self.name)
        count, _, height, width = inputs.shape
        device = inputs.device
        angle = torch.deg2rad(_uniform(count, -self.degrees, self.degrees, generator, device))
        zoom = _uniform(count, *self.scale, generator, device)
        shift = _uniform(2 * count, -self.translate, self.translate, generator, device).view(
            count, 2
        )
        # theta maps output to input coordinates in [-1, 1]; the aspect ratio keeps rotations rigid.
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        aspect = width / height
        matrix = torch.stack(
            [torch.stack([cos, sin / aspect], 1), torch.stack([-sin * aspect, cos], 1)], 1
        )
        offset = -(matrix @ (2 * shift).unsqueeze(2))
        theta = torch.cat([matrix, offset], 2).to(inputs.dtype)
        grid = F.affine_grid(theta, list(inputs.shape), align_corners=False)
        moved = F.grid_sample(
            inputs, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return moved, targets


class ColorJitter(AugmentTransform):
    """Random brightness (added), contrast and saturation (blends), per image.

    Brightness adds a shift in ``[-brightness, brightness]`` (like ``tf.image``: on normalised
    inputs 0.2 is a fifth of a standard deviation). Contrast blends with the image's mean and
    saturation with its grey version, by factors in ``[1 - x, 1 + x]``; saturation needs 3 channels.
    """

    name = "jitter"

    def __init__(
        self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2
    ) -> None:
        _check_range("brightness", brightness, 0.0)
        _check_range("contrast", contrast, 0.0, 1.0)
        _check_range("saturation", saturation, 0.0, 1.0)
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.saturation = float(saturation)

    def __call__(self, inputs: Tensor, targets: Tensor, generator: torch.Generator) -> Batch:
        _check_images(inputs, self.name)
        count, device = len(inputs), inputs.device

        def factor(low: float, high: float) -> Tensor:
            return (
                _uniform(count, low, high, generator, device).view(count, 1, 1, 1).to(inputs.dtype)
            )

        if self.brightness:
            inputs = inputs + factor(-self.brightness, self.brightness)
        if self.contrast:
            mean = inputs.mean(dim=(1, 2, 3), keepdim=True)
            inputs = torch.lerp(mean, inputs, factor(1 - self.contrast, 1 + self.contrast))
        if self.saturation and inputs.shape[1] == 3:
            weights = torch.tensor([0.299, 0.587, 0.114], device=device, dtype=inputs.dtype)
            grey = (inputs * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
            inputs = torch.lerp(grey, inputs, factor(1 - self.saturation, 1 + self.saturation))
        return inputs, targets


class Cutout(AugmentTransform):
    """Zero a ``size`` x ``size`` square at a random centre in each image (clipped at the border)."""

    name = "cutout"

    def __init__(self, size: int = 8) -> None:
        _check_range("size", size, 1)
        self.size = int(size)

    def sample_boxes(
        self, count: int, height: int, width: int, generator: torch.Generator, device: torch.device
    ) -> tuple[Tensor, Tensor]:
        """Top and left corners of each example's square; they may lie outside the image."""
        top = torch.randint(0, height, (count,), generator=generator, device=device)
        left = torch.randint(0, width, (count,), generator=generator, device=device)
        return top - self.size // 2, left - self.size // 2

    def __call__(self, inputs: Tensor, targets: Tensor, generator: torch.Generator) -> Batch:
        _check_images(inputs, self.name)
        count, _, height, width = inputs.shape
        top, left = self.sample_boxes(count, height, width, generator, inputs.device)
        inside = _box_mask(top, left, self.size, self.size, height, width)
        return inputs.masked_fill(inside.unsqueeze(1), 0), targets


def _box_mask(
    top: Tensor,
    left: Tensor,
    box_height: Tensor | int,
    box_width: Tensor | int,
    height: int,
    width: int,
) -> Tensor:
    """Boolean (..., H, W) mask of the boxes starting at ``top``/``left`` (any leading shape)."""
    rows = torch.arange(height, device=top.device)
    columns = torch.arange(width, device=top.device)
    top, left = top[..., None], left[..., None]
    inside_rows = (rows >= top) & (rows < top + box_height)
    inside_columns = (columns >= left) & (columns < left + box_width)
    return inside_rows[..., :, None] & inside_columns[..., None, :]


def _soft_targets(
    targets: Tensor, num_classes: int | None, dtype: torch.dtype, name: str
) -> Tensor:
    """Float targets as they are (already soft, or regression); class indices as one-hot rows."""
    if targets.is_floating_point():
        return targets
    if num_classes is None:
        raise ConfigError(f"data.augment.{name} needs num_classes to mix integer class targets")
    dtype = dtype if dtype.is_floating_point else torch.float32
    one_hot = torch.zeros(len(targets), num_classes, device=targets.device, dtype=dtype)
    return one_hot.scatter_(1, targets.long().view(-1, 1), 1.0)


class Mixup(AugmentTransform):
    """Blend the batch with a shuffled copy of itself by a Beta(alpha, alpha) weight (Zhang et al.)."""

    name = "mixup"

    def __init__(self, alpha: float = 0.2, num_classes: int | None = None) -> None:
        _check_range("alpha", alpha, 1e-6)
        self.alpha, self.num_classes = float(alpha), num_classes

    def __call__(self, inputs: Tensor, targets: Tensor, generator: torch.Generator) -> Batch:
        soft = _soft_targets(targets, self.num_classes, inputs.dtype, self.name)
        weight = _beta(self.alpha, generator, inputs.device)
        order = torch.randperm(len(inputs), generator=generator, device=inputs.device)
        mixed = torch.lerp(inputs[order], inputs, weight.to(inputs.dtype))
        return mixed, torch.lerp(soft[order], soft, weight.to(soft.dtype))


class CutMix(AugmentTransform):
    """Paste a box from a shuffled copy of the batch; targets mix by the box's area (Yun et al.)."""

    name = "cutmix"

    def __init__(self, alpha: float = 1.0, num_classes: int | None = None) -> None:
        _check_range("alpha", alpha, 1e-6)
        self.alpha, self.num_classes = float(alpha), num_classes

    def __call__(self, inputs: Tensor, targets: Tensor, generator: torch.Generator) -> Batch:
        _check_images(inputs, self.name)
        soft = _soft_targets(targets, self.num_classes, inputs.dtype, self.name)
        count, _, height, width = inputs.shape
        device = inputs.device
        weight = _beta(self.alpha, generator, device)
        order = torch.randperm(count, generator=generator, device=device)
        ratio = torch.sqrt(1 - weight)
        row = torch.randint(0, height, (), generator=generator, device=device)
        column = torch.randint(0, width, (), generator=generator, device=device)
        half_height, half_width = (height * ratio / 2).long(), (width * ratio / 2).long()
        top, bottom = (row - half_height).clamp(0, height), (row + half_height).clamp(0, height)
        left, right = (column - half_width).clamp(0, width), (column + half_width).clamp(0, width)
        inside = _box_mask(top, left, bottom - top, right - left, height, width)
        mixed = torch.where(inside, inputs[order], inputs)
        kept = 1 - ((bottom - top) * (right - left)).to(soft.dtype) / (height * width)
        return mixed, torch.lerp(soft[order], soft, kept)


class RandomChoice(AugmentTransform):
    """Apply one of ``transforms`` per batch, chosen at random (e.g. Mixup or CutMix, as timm does).

    Every transform runs and one result is kept, so the choice never waits for the device; the
    transforms must give results of the same shapes.
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, inputs: Tensor, targets: Tensor, generator: torch.Generator) -> Batch:
        choice = torch.randint(
            0, len(self.transforms), (), generator=generator, device=inputs.device
        )
        results = [transform(inputs, targets, generator) for transform in self.transforms]
        chosen_inputs, chosen_targets = results[0]
        for index, (other_inputs, other_targets) in enumerate(results[1:], start=1):
            chosen_inputs = torch.where(choice == index, other_inputs, chosen_inputs)
            chosen_targets = torch.where(choice == index, other_targets, chosen_targets)
        return chosen_inputs, chosen_targets


class Compose(AugmentTransform):
    """Apply ``transforms`` in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, inputs: Tensor, targets: Tensor, generator: torch.Generator) -> Batch:
        for transform in self.transforms:
            inputs, targets = transform(inputs, targets, generator)
        return inputs, targets

    def __len__(self) -> int:
        return len(self.transforms)


# Registered in the order they are applied: geometric, colour, erasing, mixing.
AUGMENTATIONS.register(
    "crop", RandomCrop, description="random crop after padding", kind="geometric"
)
AUGMENTATIONS.register("flip", HorizontalFlip, description="horizontal flip", kind="geometric")
AUGMENTATIONS.register(
    "affine", RandomAffine, description="rotation, translation, scale, shear", kind="geometric"
)
AUGMENTATIONS.register(
    "jitter", ColorJitter, description="brightness, contrast, saturation", kind="colour"
)
AUGMENTATIONS.register("cutout", Cutout, description="erase a random square", kind="erasing")
AUGMENTATIONS.register(
    "mixup", Mixup, description="mix pairs of examples and labels", kind="mixing"
)
AUGMENTATIONS.register(
    "cutmix", CutMix, description="paste a box from another example", kind="mixing"
)


def build_augmentation(
    spec: Mapping[str, Any] | None, num_classes: int | None = None
) -> Compose | None:
    """Transforms from a config like ``{"crop": {"padding": 4}, "flip": true}``; ``None`` if all off.

    A value of ``true`` uses the defaults, ``false`` or ``null`` turns it off, a mapping sets options.
    With both ``mixup`` and ``cutmix`` on, each batch gets one of the two.
    """
    for name in spec or {}:
        if name not in AUGMENTATIONS:
            raise ConfigError(f"data.augment.{name}: {AUGMENTATIONS.unknown_message(name)}")
    transforms: list[Transform] = []
    for name in AUGMENTATIONS.names(sort=False):
        factory = AUGMENTATIONS.get(name)
        value = (spec or {}).get(name)
        if value is None or value is False:
            continue
        if value is not True and not isinstance(value, Mapping):
            raise ConfigError(
                f"data.augment.{name} must be true, false or a mapping of options, got {value!r}"
            )
        options = dict(value) if isinstance(value, Mapping) else {}
        if name in ("mixup", "cutmix"):
            options.setdefault("num_classes", num_classes)
        try:
            transforms.append(
                call_with_checked_kwargs(factory, options, where=f"data.augment.{name}")
            )
        except (ConfigError, TypeError, ValueError) as error:
            message = str(error)
            if not message.startswith(("'data.augment", "data.augment")):
                message = f"data.augment.{name}: {message}"
            raise ConfigError(message) from None
    mixing = [t for t in transforms if isinstance(t, Mixup | CutMix)]
    if len(mixing) == 2:
        transforms = [t for t in transforms if t not in mixing] + [RandomChoice(mixing)]
    return Compose(transforms) if transforms else None
