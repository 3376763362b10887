"""Options of the mlp, cnn and resnet families."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.models.cnn import cnn
from fathom.models.mlp import mlp
from fathom.models.resnet import cifar_resnet, resnet8, resnet18, resnet20, resnet56


def layers(model: nn.Module, kind: type[nn.Module]) -> list[nn.Module]:
    return [module for module in model.modules() if isinstance(module, kind)]


@pytest.mark.parametrize("hidden", [[], [32], [64, 32, 16], 8])
def test_mlp_depth_and_width(hidden: list[int] | int) -> None:
    model = mlp(in_features=12, num_classes=4, hidden=hidden)
    widths = [hidden] if isinstance(hidden, int) else hidden
    linears = layers(model, nn.Linear)
    assert [linear.out_features for linear in linears] == [*widths, 4]
    assert linears[0].in_features == 12
    assert model(torch.randn(5, 3, 2, 2)).shape == (5, 4)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("relu", nn.ReLU),
        ("leaky_relu", nn.LeakyReLU),
        ("gelu", nn.GELU),
        ("tanh", nn.Tanh),
        ("sigmoid", nn.Sigmoid),
    ],
)
def test_activations(name: str, kind: type[nn.Module]) -> None:
    assert len(layers(mlp(6, 2, hidden=[8, 8], activation=name), kind)) == 2
    assert len(layers(cnn(image_size=8, activation=name), kind)) == 3


def test_bad_activation_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="model.activation.*did you mean 'gelu'"):
        mlp(6, 2, activation="gelo")
    with pytest.raises(ConfigError, match="did you mean 'relu'"):
        cnn(activation="rleu")


def test_mlp_dropout_and_batch_norm() -> None:
    model = mlp(6, 2, hidden=[8, 8], dropout=0.3, batch_norm=True)
    assert [dropout.p for dropout in layers(model, nn.Dropout)] == [0.3, 0.3]
    assert len(layers(model, nn.BatchNorm1d)) == 2
    assert all(linear.bias is None for linear in layers(model.features, nn.Linear))
    assert not layers(mlp(6, 2), nn.Dropout) and not layers(mlp(6, 2), nn.BatchNorm1d)
    with pytest.raises(ConfigError, match="model.dropout"):
        mlp(6, 2, dropout=1.0)


@pytest.mark.parametrize("channels", [[16], [8, 16, 32], [4, 8, 8, 8, 8]])
@pytest.mark.parametrize("image_size", [8, 28, 32])
def test_cnn_depth_fits_any_image_size(channels: list[int], image_size: int) -> None:
    model = cnn(in_channels=3, image_size=image_size, channels=channels, hidden=16)
    assert len(layers(model, nn.Conv2d)) == len(channels)
    outputs = model(torch.randn(2, 3, image_size, image_size))
    assert outputs.shape == (2, 10)


@pytest.mark.parametrize("kernel_size", [1, 2, 4, 5])
def test_cnn_kernel_sizes_and_non_square_images(kernel_size: int) -> None:
    model = cnn(image_size=(28, 20), kernel_size=kernel_size, hidden=0)
    assert len(layers(model, nn.Linear)) == 1
    assert model(torch.randn(2, 1, 28, 20)).shape == (2, 10)


@pytest.mark.parametrize("kernel_size", [1, 2, 3, 4, 5])
def test_cnn_strided_downsampling_halves_the_map_without_pooling(kernel_size: int) -> None:
    model = cnn(channels=[16, 32], hidden=100, kernel_size=kernel_size, downsample="stride")
    convolutions = layers(model, nn.Conv2d)
    assert not layers(model, nn.MaxPool2d)
    assert [convolution.stride for convolution in convolutions] == [(2, 2), (2, 2)]
    assert model.head[0].in_features == 32 * 7 * 7  # 28 -> 14 -> 7, as with pooling
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_cnn_downsample_is_checked() -> None:
    with pytest.raises(ConfigError, match="model.downsample must be pool or stride"):
        cnn(downsample="avg")


def test_cnn_batch_norm_and_dropout() -> None:
    plain = cnn(batch_norm=False, dropout=0.25)
    assert not layers(plain, nn.BatchNorm2d)
    assert all(convolution.bias is not None for convolution in layers(plain, nn.Conv2d))
    assert [dropout.p for dropout in layers(plain, nn.Dropout)] == [0.25]
    normed = cnn()
    assert len(layers(normed, nn.BatchNorm2d)) == 2
    assert all(convolution.bias is None for convolution in layers(normed, nn.Conv2d))


@pytest.mark.parametrize(("factory", "depth"), [(resnet8, 8), (resnet20, 20), (resnet56, 56)])
def test_cifar_resnet_depth(factory: Callable[[], nn.Module], depth: int) -> None:
    model = factory()
    weighted = [m for m in layers(model, nn.Conv2d) if m.kernel_size == (3, 3)]
    assert len(weighted) + len(layers(model, nn.Linear)) == depth
    assert [len(stage) for stage in model.features[1:4]] == [(depth - 2) // 6] * 3
    assert len(model.parameter_groups()) == 5


def test_cifar_resnet_options() -> None:
    assert len(layers(cifar_resnet(32), nn.Conv2d)) == 31 + 2
    with pytest.raises(ConfigError, match="6n \\+ 2"):
        cifar_resnet(21)
    wide = resnet8(in_channels=1, num_classes=5, width=2)
    assert wide.features[0][0].in_channels == 1 and wide.head.in_features == 128
    assert wide(torch.randn(2, 1, 16, 16)).shape == (2, 5)
    with pytest.raises(ConfigError, match="model.width"):
        resnet8(width=0)


def test_zero_init_residual() -> None:
    model = resnet8(zero_init_residual=True)
    blocks = [block for stage in model.features[1:4] for block in stage]
    assert all(torch.all(block.bn2.weight == 0) for block in blocks)
    assert all(torch.all(block.bn1.weight == 1) for block in blocks)
    assert all(
        torch.all(block.bn2.weight == 1) for stage in resnet8().features[1:4] for block in stage
    )


def test_resnet18_matches_torchvision_size_and_picks_its_stem() -> None:
    model = resnet18()
    assert sum(parameter.numel() for parameter in model.parameters()) == 11_689_512
    assert model.features[0][0].kernel_size == (7, 7) and len(model.features[0]) == 4
    small = resnet18(num_classes=10, image_size=32)
    assert small.features[0][0].kernel_size == (3, 3) and len(small.features[0]) == 3
    assert resnet18(image_size=32, small_input=False).features[0][0].kernel_size == (7, 7)
    assert resnet18(image_size=224, small_input=True).features[0][0].kernel_size == (3, 3)
    assert resnet18(image_size=(48, 80)).features[0][0].kernel_size == (7, 7)
    assert len(model.parameter_groups()) == 6
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_reset_head_keeps_dtype_and_features() -> None:
    model = resnet8().double()
    features = model.features
    model.reset_head(4)
    assert model.features is features
    assert model.head.weight.dtype == torch.float64 and model.head.out_features == 4
    with pytest.raises(ConfigError):
        model.reset_head(0)
