"""VAE task: the loss is reconstruction + β·KL, each part checked against its definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

import fathom.models
from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError
from fathom.tasks import create_for_data
from fathom.tasks.generative import MeanMetrics
from fathom.tasks.vae import kl_to_standard_normal

INFO = DataInfo(
    "grey", "classification", (1, 28, 28), num_classes=10,
    normalization={"mean": [0.13], "std": [0.31]},
)  # fmt: skip


def test_kl_matches_torch_distributions() -> None:
    mean, log_variance = torch.randn(5, 4), torch.randn(5, 4)
    expected = kl_divergence(
        Normal(mean, (0.5 * log_variance).exp()), Normal(torch.zeros(4), torch.ones(4))
    ).sum(dim=1)
    torch.testing.assert_close(kl_to_standard_normal(mean, log_variance), expected)


def test_loss_is_reconstruction_plus_beta_kl() -> None:
    torch.manual_seed(0)
    model = fathom.models.create_for_data("vae", INFO, width=8)
    task = create_for_data("vae", INFO, beta=0.5)
    pixels = torch.rand(6, 1, 28, 28)
    inputs = (pixels - 0.13) / 0.31
    torch.manual_seed(1)
    loss, values = task.training_loss("main", model, (inputs, torch.zeros(6)))
    torch.manual_seed(1)  # the same reparameterisation noise, by hand
    mean, log_variance = model.encode(pixels * 2 - 1)
    noise = torch.randn(mean.shape)
    probabilities = torch.sigmoid(model.decode(mean + (0.5 * log_variance).exp() * noise))
    bernoulli = pixels * probabilities.log() + (1 - pixels) * (1 - probabilities).log()
    reconstruction = -bernoulli.flatten(1).sum(dim=1)
    kl = kl_to_standard_normal(mean, log_variance)
    torch.testing.assert_close(
        values["reconstruction"], reconstruction.mean(), rtol=1e-4, atol=1e-3
    )
    torch.testing.assert_close(values["kl"], kl.mean(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(loss, values["reconstruction"] + 0.5 * values["kl"])


def test_evaluation_metrics_elbo_and_bits_per_dim() -> None:
    torch.manual_seed(0)
    model = fathom.models.create_for_data("vae", INFO, width=8).eval()
    task = create_for_data("vae", INFO, beta=2.0)
    batch = (torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.long))
    first, second = MeanMetrics(torch.device("cpu")), MeanMetrics(torch.device("cpu"))
    task.evaluation_step(model, batch, first)
    task.evaluation_step(model, batch, second)
    metrics = first.compute()
    assert metrics == second.compute()  # seeded: evaluations repeat exactly
    assert metrics["elbo"] == pytest.approx(-(metrics["reconstruction"] + metrics["kl"]))
    assert metrics["loss"] == pytest.approx(metrics["reconstruction"] + 2.0 * metrics["kl"])
    assert metrics["bits_per_dim"] == pytest.approx(-metrics["elbo"] / (784 * math.log(2)))


def test_vae_sampling_and_bad_requests(tmp_path) -> None:
    model = fathom.models.create_for_data("vae", INFO, width=8)
    task = create_for_data("vae", INFO)
    first = task.generate(model, INFO, tmp_path / "a", n=5, seed=1)
    second = task.generate(model, INFO, tmp_path / "b", n=5, seed=1)
    assert np.array_equal(np.load(first["samples_file"]), np.load(second["samples_file"]))
    assert first["labels_file"] is None
    with pytest.raises(ConfigError, match="at least 1"):
        task.generate(model, INFO, tmp_path, n=-2)
    with pytest.raises(ConfigError, match="task.beta"):
        create_for_data("vae", INFO, beta=-1.0)
