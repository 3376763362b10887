"""EfficientNet (Tan and Le, 2019): MBConv blocks with squeeze-and-excitation, compound scaling.

An MBConv block is an inverted residual (1x1 expand → k x k depthwise → 1x1 linear projection)
with SiLU activations and a squeeze-and-excitation gate after the depthwise convolution.
Compound scaling multiplies the channels of every stage by ``width`` (rounded to multiples of 8)
and the blocks of every stage by ``depth`` (rounded up): B0 is (1.0, 1.0), B1 (1.0, 1.1), B2
(1.1, 1.2), B3 (1.2, 1.4). ``drop_path`` drops whole residual branches during training
(stochastic depth), rising linearly from 0 at the first block to ``drop_path`` at the last.
For small images (``small_input``, default for 64 px or less) the stem and the second stage keep
the resolution, so 32 px images end as 4x4 maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.models.mobilenet import (
    check_scaling,
    conv_norm_activation,
    initialize_convnet,
    is_small,
    make_divisible,
)
from fathom.nn.classifier import ClassifierModel
from fathom.options import Multiplier, Probability, Size

# (expansion, channels, blocks, stride, kernel) per stage of EfficientNet-B0 (the paper's Table 1).
EFFICIENTNET_B0_STAGES = (
    (1, 16, 1, 1, 3),
    (6, 24, 2, 2, 3),
    (6, 40, 2, 2, 5),
    (6, 80, 3, 2, 3),
    (6, 112, 3, 1, 5),
    (6, 192, 4, 2, 5),
    (6, 320, 1, 1, 3),
)


class SqueezeExcitation(nn.Module):
    """Scale each channel by a gate computed from the globally pooled channels (Hu et al.)."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.activation = nn.SiLU()
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        pooled = inputs.mean(dim=(2, 3), keepdim=True)
        return inputs * torch.sigmoid(self.expand(self.activation(self.reduce(pooled))))


class MBConv(nn.Module):
    """Expand → depthwise → squeeze-and-excitation → project, plus the input when shapes match."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expansion: int,
        kernel_size: int,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_norm_activation(in_channels, hidden, 1, activation=nn.SiLU))
        layers += [
            conv_norm_activation(
                hidden, hidden, kernel_size, stride, groups=hidden, activation=nn.SiLU
            ),
            SqueezeExcitation(hidden, max(1, in_channels // 4)),
            conv_norm_activation(hidden, out_channels, 1, activation=None),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_path = drop_path

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.block(inputs)
        if not self.residual:
            return outputs
        if self.training and self.drop_path > 0:
            keep = 1.0 - self.drop_path
            mask = torch.empty(len(outputs), 1, 1, 1, device=outputs.device, dtype=outputs.dtype)
            outputs = outputs * mask.bernoulli_(keep) / keep
        return inputs + outputs


class EfficientNet(ClassifierModel):
    """``features``: stem, one module per stage, 1x1 conv, pool; ``head``: dropout → linear."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        width: float = 1.0,
        depth: float = 1.0,
        small_input: bool = False,
        dropout: float = 0.2,
        drop_path: float = 0.0,
    ) -> None:
        stem_channels = make_divisible(32 * width)
        stem = conv_norm_activation(
            in_channels, stem_channels, 3, 1 if small_input else 2, activation=nn.SiLU
        )
        counts = [math.ceil(stage[2] * depth) for stage in EFFICIENTNET_B0_STAGES]
        total, index = sum(counts), 0
        stages: list[nn.Module] = []
        previous = stem_channels
        for stage, count in enumerate(counts):
            expansion, channels, _, stride, kernel = EFFICIENTNET_B0_STAGES[stage]
            out_channels = make_divisible(channels * width)
            stride = 1 if small_input and stage == 1 else stride
            blocks = []
            for block in range(count):
                rate = drop_path * index / max(1, total - 1)
                blocks.append(
                    MBConv(
                        previous, out_channels, stride if block == 0 else 1, expansion, kernel, rate
                    )
                )
                previous, index = out_channels, index + 1
            stages.append(nn.Sequential(*blocks))
        last_channels = make_divisible(1280 * width)
        features = nn.Sequential(
            stem,
            *stages,
            conv_norm_activation(previous, last_channels, 1, activation=nn.SiLU),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        head = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channels, num_classes))
        super().__init__(features, head)
        initialize_convnet(self)


def efficientnet(
    in_channels: Size = 3,
    num_classes: Size = 1000,
    image_size: Size | Sequence[Size] = 224,
    width: Multiplier = 1.0,
    depth: Multiplier = 1.0,
    small_input: bool | None = None,
    dropout: Probability = 0.2,
    drop_path: Probability = 0.2,
) -> EfficientNet:
    """An EfficientNet with compound scaling ``width`` x ``depth`` of B0."""
    width, depth = check_scaling("width", width), check_scaling("depth", depth)
    if not 0.0 <= drop_path < 1.0:
        raise ConfigError(f"model.drop_path must be in [0, 1), got {drop_path}")
    return EfficientNet(
        in_channels,
        num_classes,
        width,
        depth,
        is_small(image_size, small_input),
        dropout,
        drop_path,
    )


def efficientnet_b0(
    in_channels: Size = 3,
    num_classes: Size = 1000,
    image_size: Size | Sequence[Size] = 224,
    width: Multiplier = 1.0,
    depth: Multiplier = 1.0,
    small_input: bool | None = None,
    dropout: Probability = 0.2,
    drop_path: Probability = 0.2,
) -> EfficientNet:
    """EfficientNet-B0 for 224 px (5.3M parameters at 1,000 classes); small stem for 64 px or less."""
    return efficientnet(
        in_channels, num_classes, image_size, width, depth, small_input, dropout, drop_path
    )


def efficientnet_small(
    in_channels: Size = 3,
    num_classes: Size = 10,
    image_size: Size | Sequence[Size] = 32,
    width: Multiplier = 0.5,
    depth: Multiplier = 0.5,
    small_input: bool | None = None,
    dropout: Probability = 0.1,
    drop_path: Probability = 0.05,
) -> EfficientNet:
    """EfficientNet scaled down to half width and depth for 28-32 px images (0.7M parameters)."""
    return efficientnet(
        in_channels, num_classes, image_size, width, depth, small_input, dropout, drop_path
    )
