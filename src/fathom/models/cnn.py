"""LeNet-style convolutional network: conv blocks with pooling, then a small fully connected head.

Each block is conv → max-pool → (batch norm) → activation. Pooling before normalisation and
activation (as airbench does) computes nearly the same function as pooling after them, since
max-pooling commutes with a per-channel increasing map, at a quarter of their cost. A block pools only while the feature map
stays at least 2x2, so 8x8 digits, 28x28 MNIST and 32x32 CIFAR all fit the default.
``downsample="stride"`` halves the map with the convolution's own stride instead of pooling
(Wong et al.'s MNIST network: 4x4 kernels, stride 2, no pooling).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fathom.errors import ConfigError
from fathom.models.mlp import check_dropout, make_activation
from fathom.nn.classifier import ClassifierModel
from fathom.options import KernelSize, Probability, Size, SizeOrZero, Widths

DOWNSAMPLING = ("pool", "stride")


class CNN(ClassifierModel):
    """``features``: conv blocks and flatten; ``head``: linear → activation → dropout → linear."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int | Sequence[int] = 28,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        kernel_size: int = 3,
        dropout: float = 0.0,
        batch_norm: bool = True,
        activation: str = "relu",
        downsample: str = "pool",
    ) -> None:
        check_dropout(dropout)
        if downsample not in DOWNSAMPLING:
            raise ConfigError(f"model.downsample must be pool or stride, got '{downsample}'")
        height, width = _pair(image_size)
        if kernel_size < 1 or min(in_channels, num_classes, *channels) < 1 or hidden < 0:
            raise ConfigError(
                f"cnn sizes must be positive: in_channels={in_channels}, channels={list(channels)}, "
                f"kernel_size={kernel_size}, hidden={hidden}, num_classes={num_classes}"
            )
        blocks: list[nn.Module] = []
        previous = in_channels
        for count in channels:
            block, height, width = _conv_block(
                previous, count, kernel_size, (height, width), batch_norm, activation, downsample
            )
            blocks.append(block)
            previous = count
        features = nn.Sequential(*blocks, nn.Flatten())
        flat = previous * height * width
        if hidden:
            head: nn.Module = nn.Sequential(
                nn.Linear(flat, hidden),
                make_activation(activation),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            )
        else:
            head = nn.Sequential(nn.Dropout(dropout), nn.Linear(flat, num_classes))
        super().__init__(features, head)


def _conv_block(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    size: tuple[int, int],
    batch_norm: bool,
    activation: str,
    downsample: str = "pool",
) -> tuple[nn.Sequential, int, int]:
    """conv → max-pool (while the map stays ≥ 2x2) → (batch norm) → activation, and the new size.

    With ``downsample="stride"`` the conv itself halves the map (stride 2, padding (k-1)//2, so
    28 → 14 → 7 for kernels 3 and 4) while the map is at least 4 pixels, instead of pooling."""
    strided = downsample == "stride" and min(size) >= 4
    stride, padding = (2, (kernel_size - 1) // 2) if strided else (1, kernel_size // 2)
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=not batch_norm)
    ]
    # A padded odd kernel keeps the size; an even one adds a pixel. Strided: halved.
    height, width = ((side + 2 * padding - kernel_size) // stride + 1 for side in size)
    if downsample == "pool" and min(height, width) >= 4:
        layers.append(nn.MaxPool2d(2))
        height, width = height // 2, width // 2
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(make_activation(activation))
    return nn.Sequential(*layers), height, width


def _pair(image_size: int | Sequence[int]) -> tuple[int, int]:
    sizes = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(sizes) != 2 or min(sizes) < 1:
        raise ConfigError(
            f"model.image_size must be a positive size or [height, width], got {image_size}"
        )
    return int(sizes[0]), int(sizes[1])


def cnn(
    in_channels: Size = 1,
    num_classes: Size = 10,
    image_size: Size | Sequence[Size] = 28,
    channels: Widths = (32, 64),
    hidden: SizeOrZero = 128,
    kernel_size: KernelSize = 3,
    dropout: Probability = 0.0,
    batch_norm: bool = True,
    activation: str = "relu",
    downsample: str = "pool",
) -> CNN:
    """A LeNet-style CNN; ``channels`` gives one conv block per entry, ``hidden=0`` drops the
    hidden layer, ``downsample`` is ``pool`` (max-pool after each conv) or ``stride`` (stride-2
    convs)."""
    return CNN(
        in_channels,
        num_classes,
        image_size,
        [int(count) for count in channels],
        hidden,
        kernel_size,
        dropout,
        batch_norm,
        activation,
        downsample,
    )
