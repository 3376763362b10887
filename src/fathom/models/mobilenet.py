"""MobileNetV2 (Sandler et al., 2018): inverted residuals built from depthwise-separable convolutions.

Each block expands its input with a 1x1 convolution (``expand`` times the channels), filters it
with a 3x3 depthwise convolution, and projects it back with a linear 1x1 convolution; a block that
keeps the shape adds its input. ``width`` multiplies every channel count (rounded to multiples of
8). For 224 px inputs the stem has stride 2 (32x smaller maps at the end); for small images
(``small_input``, default for 64 px or less) the stem and the second stage keep the resolution,
so 32 px CIFAR images end as 4x4 maps and 8 px digits as 1x1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.nn.classifier import ClassifierModel
from fathom.options import Multiplier, Probability, Size

# (expansion, channels, blocks, stride) per stage, as in the paper's Table 2.
MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never below 90% of ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_norm_activation(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = nn.ReLU6,
) -> nn.Sequential:
    """Convolution (no bias, "same" padding) → batch norm → activation (none if ``None``)."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


def check_scaling(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"model.{name} must be a positive number, got {value!r}")
    return float(value)


class InvertedResidual(nn.Module):
    """1x1 expand → 3x3 depthwise → 1x1 linear projection, plus the input when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_norm_activation(in_channels, hidden, 1))
        layers += [
            conv_norm_activation(hidden, hidden, 3, stride, groups=hidden),
            conv_norm_activation(hidden, out_channels, 1, activation=None),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.block(inputs)
        return inputs + outputs if self.residual else outputs


class MobileNetV2(ClassifierModel):
    """``features``: stem, one module per stage, last 1x1 conv, pool; ``head``: dropout → linear."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        width: float = 1.0,
        small_input: bool = False,
        dropout: float = 0.2,
    ) -> None:
        stem_channels = make_divisible(32 * width)
        last_channels = make_divisible(1280 * max(1.0, width))
        stem = conv_norm_activation(in_channels, stem_channels, 3, 1 if small_input else 2)
        stages: list[nn.Module] = []
        previous = stem_channels
        for index, (expansion, channels, count, stride) in enumerate(MOBILENET_V2_STAGES):
            out_channels = make_divisible(channels * width)
            if small_input and index == 1:
                stride = 1
            blocks = []
            for block in range(count):
                blocks.append(
                    InvertedResidual(previous, out_channels, stride if block == 0 else 1, expansion)
                )
                previous = out_channels
            stages.append(nn.Sequential(*blocks))
        features = nn.Sequential(
            stem,
            *stages,
            conv_norm_activation(previous, last_channels, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        head = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channels, num_classes))
        super().__init__(features, head)
        initialize_convnet(self)


def initialize_convnet(model: nn.Module) -> None:
    """Kaiming-normal (fan-out) convolutions, unit batch norms, small normal linear layers."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


def is_small(image_size: int | Sequence[int], small_input: bool | None) -> bool:
    """``small_input`` if given, else whether the image is 64 px or less on its longer side."""
    if small_input is not None:
        return bool(small_input)
    sides = [image_size] if isinstance(image_size, int) else list(image_size)
    return max(sides) <= 64


def mobilenet_v2(
    in_channels: Size = 3,
    num_classes: Size = 1000,
    image_size: Size | Sequence[Size] = 224,
    width: Multiplier = 1.0,
    small_input: bool | None = None,
    dropout: Probability = 0.2,
) -> MobileNetV2:
    """MobileNetV2 (3.5M parameters at 1,000 classes); small-image stem for 64 px or less."""
    width = check_scaling("width", width)
    return MobileNetV2(in_channels, num_classes, width, is_small(image_size, small_input), dropout)


def mobilenet_small(
    in_channels: Size = 3,
    num_classes: Size = 10,
    image_size: Size | Sequence[Size] = 32,
    width: Multiplier = 0.5,
    small_input: bool | None = None,
    dropout: Probability = 0.1,
) -> MobileNetV2:
    """MobileNetV2 at half width for 28-32 px images (0.7M parameters)."""
    return mobilenet_v2(in_channels, num_classes, image_size, width, small_input, dropout)
