"""The airbench94 network (Jordan, 2024): the fastest known route to 94% on CIFAR-10.

A 2x2 convolution of ``2 * channels * 4`` outputs (the "whitening" layer; with ``whiten=True`` the first
training batch sets it from its patches' covariance and freezes it, as airbench does), GELU, then three conv groups
(conv → max-pool → batch norm → GELU → conv → batch norm → GELU) at ``widths`` (64/256/256), a
global max-pool, a bias-free linear layer and a fixed 1/9 output scale. Batch norms learn a bias
only (their scale stays 1; ``bias_scale`` 8 gives biases airbench's 64x SGD learning rate) and keep fast running statistics (momentum 0.4); the first conv of
each group starts as a partial identity (Dirac). Groups pool only while the map is at least 2x2,
so 8 px digits fit as well as 32 px CIFAR.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.nn.classifier import ClassifierModel
from fathom.options import Size


class BiasBatchNorm(nn.BatchNorm2d):
    """Batch norm whose scale is fixed at 1: only the bias is a parameter.

    The bias is ``bias_scale`` times the stored parameter, which multiplies its effective SGD
    learning rate by ``bias_scale ** 2`` (airbench trains biases 64x faster: ``bias_scale=8``).
    """

    def __init__(
        self, channels: int, momentum: float = 0.4, eps: float = 1e-12, bias_scale: float = 8.0
    ) -> None:
        super().__init__(channels, eps=eps, momentum=momentum, affine=False)
        self.bias_only = nn.Parameter(torch.zeros(channels))
        self.bias_scale = bias_scale

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        normalised = super().forward(inputs)
        bias = self.bias_only * self.bias_scale
        return normalised + bias.view(1, -1, 1, 1).to(normalised.dtype)


class Scale(nn.Module):
    """Multiply by a fixed number (airbench scales its logits by 1/9)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs * self.factor


def dirac_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A bias-free 3x3 conv whose first ``in_channels`` filters start as the identity."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: min(in_channels, out_channels)])
    return conv


def conv_group(
    in_channels: int, out_channels: int, pool: bool, momentum: float, bias_scale: float
) -> nn.Sequential:
    """conv → (max-pool) → batch norm → GELU → conv → batch norm → GELU."""
    return nn.Sequential(
        dirac_conv(in_channels, out_channels),
        nn.MaxPool2d(2) if pool else nn.Identity(),
        BiasBatchNorm(out_channels, momentum, bias_scale=bias_scale),
        nn.GELU(),
        dirac_conv(out_channels, out_channels),
        BiasBatchNorm(out_channels, momentum, bias_scale=bias_scale),
        nn.GELU(),
    )


class AirbenchNet(ClassifierModel):
    """``features``: whitening conv, GELU, three conv groups, max-pool; ``head``: linear x 1/9."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        widths: Sequence[int],
        momentum: float,
        scale: float,
        bias_scale: float = 8.0,
        whiten: bool = False,
    ) -> None:
        whiten_width = 2 * in_channels * 2 * 2
        side = image_size - 1  # the 2x2 whitening conv has no padding
        groups: list[nn.Module] = []
        previous = whiten_width
        for width in widths:
            pool = side >= 2
            groups.append(conv_group(previous, width, pool, momentum, bias_scale))
            side, previous = (side // 2 if pool else side), width
        features = nn.Sequential(
            nn.Conv2d(in_channels, whiten_width, 2, padding=0, bias=True),
            nn.GELU(),
            *groups,
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        head = nn.Sequential(nn.Linear(previous, num_classes, bias=False), Scale(scale))
        super().__init__(features, head)
        self.register_buffer("whitened", torch.tensor(not whiten))
        self.pending_whitening = whiten
        self.register_load_state_dict_post_hook(_sync_whitening_flag)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.pending_whitening and self.training:
            whiten_init(self, inputs[:WHITENING_IMAGES])
        return super().forward(inputs)


WHITENING_IMAGES = 5000  # airbench estimates the patch covariance from 5,000 training images


def _sync_whitening_flag(module: nn.Module, incompatible_keys: object) -> None:
    """A restored model that was whitened before does not whiten again."""
    module.pending_whitening = not bool(module.whitened)


@torch.no_grad()
def whiten_init(model: AirbenchNet, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set the 2x2 first conv to whiten ``images``' patches: eigenvectors / sqrt(eigenvalues).

    Half the filters are the scaled eigenvectors, half their negatives (so GELU keeps both signs).
    """
    conv = model.features[0]
    channels, size = conv.in_channels, conv.kernel_size[0]
    patches = images.float().unfold(2, size, 1).unfold(3, size, 1)
    patches = patches.transpose(1, 3).reshape(-1, channels * size * size)
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.T.flip(0)
    filters = eigenvectors.reshape(-1, channels, size, size)  # patches are (C, kh, kw)
    scaled = filters / torch.sqrt(eigenvalues.clamp_min(0) + eps).view(-1, 1, 1, 1)
    conv.weight.copy_(torch.cat([scaled, -scaled]).to(conv.weight))
    conv.weight.requires_grad_(False)  # airbench keeps the whitening fixed; its bias still learns
    model.whitened.fill_(True)
    model.pending_whitening = False


def airbench(
    in_channels: Size = 3,
    num_classes: Size = 10,
    image_size: Size | Sequence[Size] = 32,
    widths: Sequence[int] = (64, 256, 256),
    batchnorm_momentum: float = 0.4,
    scale: float = 1 / 9,
    bias_scale: float = 8.0,
    whiten: bool = False,
) -> AirbenchNet:
    """airbench94's network; ``widths`` sets the three conv groups (64/256/256: 1.97M params).

    ``whiten``: the first training batch (up to 5,000 images) sets the 2x2 whitening conv, which
    then stays fixed (``whiten_init``); otherwise it is an ordinary learned conv.
    """
    side = image_size if isinstance(image_size, int) else min(image_size)
    widths = [int(width) for width in widths]
    if not widths or min(widths) < 1 or side < 2:
        raise ConfigError(
            f"model.widths must be positive and images at least 2 px: {widths}, {image_size}"
        )
    if not 0.0 < batchnorm_momentum <= 1.0:
        raise ConfigError(f"model.batchnorm_momentum must be in (0, 1], got {batchnorm_momentum}")
    return AirbenchNet(
        in_channels, num_classes, int(side), widths, batchnorm_momentum, scale, bias_scale, whiten
    )
