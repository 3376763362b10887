"""A configurable convolutional family: the search space of ``fathom nas``.

stem (3x3 conv) → stages → global average pool → linear. Stage ``i`` has ``depths[i]`` blocks of
``widths[i]`` channels; each stage after the first halves the map while it stays at least 4x4.
A block is a plain ``kernel_size`` conv (``expansion`` 1) or an inverted bottleneck (1x1 expand
by ``expansion``, depthwise ``kernel_size``, 1x1 project; MobileNetV2), with ``norm`` (batch,
group, none), ``activation``, and an identity skip where shapes allow it (``skip``). Every
architecture the search finds is one set of these options, so it loads and serves like any run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.models.mlp import make_activation
from fathom.nn.classifier import ClassifierModel

NORMS = ("batch", "group", "none")


def make_norm(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "group":
        return nn.GroupNorm(math.gcd(channels, 8), channels)
    return nn.Identity()


class Block(nn.Module):
    """One conv block with an optional identity skip."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        bias = spec.norm == "none"
        padding = spec.kernel_size // 2
        if spec.expansion == 1:
            layers: list[nn.Module] = [
                nn.Conv2d(spec.inputs, spec.outputs, spec.kernel_size, spec.stride, padding, bias=bias),
                make_norm(spec.norm, spec.outputs), make_activation(spec.activation),
            ]  # fmt: skip
        else:
            hidden = spec.inputs * spec.expansion
            layers = [
                nn.Conv2d(spec.inputs, hidden, 1, bias=bias), make_norm(spec.norm, hidden),
                make_activation(spec.activation),
                nn.Conv2d(hidden, hidden, spec.kernel_size, spec.stride, padding, groups=hidden, bias=bias),
                make_norm(spec.norm, hidden), make_activation(spec.activation),
                nn.Conv2d(hidden, spec.outputs, 1, bias=bias), make_norm(spec.norm, spec.outputs),
            ]  # fmt: skip
        self.body = nn.Sequential(*layers)
        self.skip = spec.skip and spec.stride == 1 and spec.inputs == spec.outputs

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.body(inputs)
        return outputs + inputs if self.skip else outputs


class BlockSpec:
    """The options of one block (a plain record; the factory checks them once)."""

    def __init__(self, inputs: int, outputs: int, stride: int, options: dict) -> None:
        self.inputs, self.outputs, self.stride = inputs, outputs, stride
        self.kernel_size = options["kernel_size"]
        self.expansion = options["expansion"]
        self.activation = options["activation"]
        self.norm = options["norm"]
        self.skip = options["skip"]


class ConvNet(ClassifierModel):
    """``features``: stem, stages, pooling; ``head``: one linear layer."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        widths: Sequence[int],
        depths: Sequence[int],
        options: dict,
    ) -> None:
        stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=options["norm"] == "none"),
            make_norm(options["norm"], widths[0]),
            make_activation(options["activation"]),
        )
        layers: list[nn.Module] = [stem]
        previous, size = widths[0], image_size
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            for index in range(depth):
                stride = 2 if stage > 0 and index == 0 and size >= 4 else 1
                size = (size + 1) // 2 if stride == 2 else size
                layers.append(Block(BlockSpec(previous, width, stride, options)))
                previous = width
        features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        super().__init__(features, nn.Linear(previous, num_classes))


def convnet(
    in_channels: int = 1,
    num_classes: int = 10,
    image_size: int | Sequence[int] = 28,
    widths: Sequence[int] = (16, 32),
    depths: Sequence[int] = (1, 1),
    kernel_size: int = 3,
    expansion: int = 1,
    activation: str = "relu",
    norm: str = "batch",
    skip: bool = True,
) -> ConvNet:
    """A ``ConvNet`` of ``len(widths)`` stages; see the module docstring for the options."""
    widths, depths = list(widths), list(depths)
    if not widths or len(widths) != len(depths):
        raise ConfigError(f"convnet: widths {widths} and depths {depths} need one entry per stage")
    if min(widths) < 1 or min(depths) < 1 or kernel_size < 1 or kernel_size % 2 == 0:
        raise ConfigError(
            f"convnet: widths and depths must be positive and kernel_size odd, got widths={widths}, "
            f"depths={depths}, kernel_size={kernel_size}"
        )
    if expansion < 1:
        raise ConfigError(f"convnet: expansion must be at least 1, got {expansion}")
    if norm not in NORMS:
        raise ConfigError(f"convnet: unknown norm '{norm}' (choose from {', '.join(NORMS)})")
    make_activation(activation, "model.activation")
    size = image_size if isinstance(image_size, int) else int(min(image_size))
    options = {"kernel_size": kernel_size, "expansion": expansion, "activation": activation,
               "norm": norm, "skip": bool(skip)}  # fmt: skip
    return ConvNet(in_channels, num_classes, size, widths, depths, options)
