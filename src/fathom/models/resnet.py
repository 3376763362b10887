"""Residual networks with basic blocks (He et al., 2016).

``resnet8/20/56`` are the small-image networks of the paper's CIFAR experiments: a 3x3 stem, then
three stages of ``n`` blocks at 16, 32 and 64 channels (depth ``6n + 2``). ``resnet18`` is the
ImageNet network: a 7x7 stride-2 stem and max-pool, then four stages of two blocks at 64 to 512
channels; for inputs of 64 pixels or fewer it uses a 3x3 stride-1 stem without max-pool instead.
Shortcuts that change shape are 1x1 convolutions with batch norm. Convolutions start with
Kaiming-normal weights (fan-out, as torchvision does); ``zero_init_residual`` zeroes the last
batch-norm scale of each residual branch, so every block starts as the identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.nn.classifier import ClassifierModel
from fathom.options import Depth, Multiplier, Size


class BasicBlock(nn.Module):
    """conv3x3 → bn → relu → conv3x3 → bn, plus the shortcut, then relu."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(inputs)))))
        return self.relu2(branch + self.shortcut(inputs))


class ResNet(ClassifierModel):
    """``features``: stem, one module per stage, global average pool; ``head``: a linear layer."""

    def __init__(
        self,
        stem: nn.Module,
        stem_channels: int,
        widths: Sequence[int],
        blocks_per_stage: Sequence[int],
        num_classes: int,
        zero_init_residual: bool = False,
    ) -> None:
        stages: list[nn.Module] = []
        previous = stem_channels
        for index, (width, count) in enumerate(zip(widths, blocks_per_stage, strict=True)):
            stride = 1 if index == 0 else 2
            blocks = [BasicBlock(previous, width, stride)]
            blocks += [BasicBlock(width, width) for _ in range(count - 1)]
            stages.append(nn.Sequential(*blocks))
            previous = width
        features = nn.Sequential(stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        super().__init__(features, nn.Linear(previous, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, BasicBlock) and zero_init_residual:
                nn.init.zeros_(module.bn2.weight)


def _stem(in_channels: int, out_channels: int, small_input: bool) -> nn.Sequential:
    if small_input:
        convolution = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        return nn.Sequential(convolution, nn.BatchNorm2d(out_channels), nn.ReLU())
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


def _scaled(base: int, width: float) -> int:
    if width <= 0:
        raise ConfigError(f"model.width must be positive, got {width}")
    return max(1, round(base * width))


def cifar_resnet(
    depth: Depth = 20,
    in_channels: Size = 3,
    num_classes: Size = 10,
    width: Multiplier = 1.0,
    zero_init_residual: bool = False,
) -> ResNet:
    """A small-image ResNet of ``depth = 6n + 2`` layers; ``width`` multiplies 16/32/64 channels."""
    if depth < 8 or (depth - 2) % 6:
        raise ConfigError(
            f"model.depth must be 6n + 2 (8, 14, 20, 32, 44, 56, 110, ...), got {depth}"
        )
    widths = [_scaled(base, width) for base in (16, 32, 64)]
    stem = _stem(in_channels, widths[0], small_input=True)
    blocks = [(depth - 2) // 6] * 3
    return ResNet(stem, widths[0], widths, blocks, num_classes, zero_init_residual)


def resnet8(
    in_channels: Size = 3,
    num_classes: Size = 10,
    width: Multiplier = 1.0,
    zero_init_residual: bool = False,
) -> ResNet:
    """ResNet-8 for small images (one block per stage)."""
    return cifar_resnet(8, in_channels, num_classes, width, zero_init_residual)


def resnet20(
    in_channels: Size = 3,
    num_classes: Size = 10,
    width: Multiplier = 1.0,
    zero_init_residual: bool = False,
) -> ResNet:
    """ResNet-20 for small images (three blocks per stage)."""
    return cifar_resnet(20, in_channels, num_classes, width, zero_init_residual)


def resnet56(
    in_channels: Size = 3,
    num_classes: Size = 10,
    width: Multiplier = 1.0,
    zero_init_residual: bool = False,
) -> ResNet:
    """ResNet-56 for small images (nine blocks per stage)."""
    return cifar_resnet(56, in_channels, num_classes, width, zero_init_residual)


def resnet18(
    in_channels: Size = 3,
    num_classes: Size = 1000,
    image_size: Size | Sequence[Size] = 224,
    small_input: bool | None = None,
    width: Multiplier = 1.0,
    zero_init_residual: bool = False,
) -> ResNet:
    """ImageNet-style ResNet-18; ``small_input`` (default: ``image_size <= 64``) uses a 3x3 stem."""
    if small_input is None:
        sides = [image_size] if isinstance(image_size, int) else list(image_size)
        small_input = max(sides) <= 64
    widths = [_scaled(base, width) for base in (64, 128, 256, 512)]
    stem = _stem(in_channels, widths[0], small_input)
    return ResNet(stem, widths[0], widths, [2, 2, 2, 2], num_classes, zero_init_residual)
