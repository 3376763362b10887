"""Every generative model builds for grey 28x28 and colour 32x32 images, runs forward and backward."""

from __future__ import annotations

import pytest
import torch

import fathom.models
from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError

INFOS = {
    "grey28": DataInfo("grey", "classification", (1, 28, 28), num_classes=10),
    "colour32": DataInfo("colour", "classification", (3, 32, 32), num_classes=7),
}
SMALL = {"gan": {"width": 8, "latent_dim": 8}, "vae": {"width": 8}, "unet": {"width": 8}}


def outputs_of(name: str, model: torch.nn.Module, images: torch.Tensor, labels) -> list:
    if name == "gan":
        noise = torch.randn(len(images), model.latent_dim)
        fake = model(noise, labels)
        assert fake.shape == images.shape and fake.abs().max() <= 1.0
        scores = model.discriminator(images, labels)
        assert scores.shape == (len(images),)
        return [fake, scores]
    if name == "vae":
        logits, mean, log_variance = model(images)
        assert logits.shape == images.shape and mean.shape == log_variance.shape
        assert mean.shape == (len(images), model.latent_dim)
        return [logits, mean, log_variance]
    predicted = model(images, torch.tensor([0, 999][: len(images)]), labels)
    assert predicted.shape == images.shape
    return [predicted]


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("info_name", INFOS)
@pytest.mark.parametrize("name", fathom.models.list("generative"))
def test_generative_model_builds_and_trains(name: str, info_name: str, conditional: bool) -> None:
    if conditional and name == "vae":
        pytest.skip("the VAE is unconditional")
    info = INFOS[info_name]
    torch.manual_seed(0)
    options = {**SMALL.get(name, {}), **({"conditional": True} if conditional else {})}
    model = fathom.models.create_for_data(name, info, **options)
    assert model.num_classes == (info.num_classes if conditional else 0)
    images = torch.rand(2, *info.input_shape) * 2 - 1
    labels = torch.tensor([0, info.num_classes - 1]) if conditional else None
    outputs = outputs_of(name, model, images, labels)
    assert all(torch.isfinite(output).all() for output in outputs)
    sum(output.square().mean() for output in outputs).backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name


def test_spectral_norm_discriminator_and_bad_sizes() -> None:
    model = fathom.models.create_for_data("gan", INFOS["grey28"], width=8, spectral_norm=True)
    assert any("parametrizations" in key for key in model.state_dict())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.discriminator.modules())
    digits = DataInfo("digits", "classification", (1, 10, 10), num_classes=10)
    for name in fathom.models.list("generative"):
        with pytest.raises(ConfigError, match="multiple of 4"):
            fathom.models.create_for_data(name, digits)
