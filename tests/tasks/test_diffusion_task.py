"""Diffusion task: noise schedules, closed-form forward noising, deterministic DDIM, guidance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fathom.models
from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError
from fathom.tasks import create_for_data

INFO = DataInfo("grey", "classification", (1, 28, 28), num_classes=4)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_forward_noising_matches_the_step_by_step_process(schedule: str) -> None:
    task = create_for_data("diffusion", INFO, noise_schedule=schedule, timesteps=40, steps=10)
    betas = task.betas
    assert (betas > 0).all() and (betas < 1).all()
    assert (task.alpha_bars[1:] < task.alpha_bars[:-1]).all() and task.alpha_bars[-1] < 0.05
    # x_t = √(1-β_t) x_{t-1} + √β_t ε_t, iterated: mean factor and variance in closed form
    factor, variance = (
        torch.tensor(1.0, dtype=torch.float64),
        torch.tensor(0.0, dtype=torch.float64),
    )
    for t in range(40):
        factor = factor * (1 - betas[t]).sqrt()
        variance = (1 - betas[t]) * variance + betas[t]
        torch.testing.assert_close(factor, task.alpha_bars[t].sqrt())
        torch.testing.assert_close(variance, 1 - task.alpha_bars[t])
    # and the closed form itself, for a few steps, with the same noise by hand
    clean, noise = torch.rand(3, 1, 28, 28) * 2 - 1, torch.randn(3, 1, 28, 28)
    steps = torch.tensor([0, 17, 39])
    expected = torch.stack([
        task.alpha_bars[t].sqrt().float() * clean[i] + (1 - task.alpha_bars[t]).sqrt().float() * noise[i]
        for i, t in enumerate(steps.tolist())
    ])  # fmt: skip
    torch.testing.assert_close(task.add_noise(clean, steps, noise), expected)
    # Monte Carlo: iterating the one-step process gives the closed form's mean and spread
    generator = torch.Generator().manual_seed(0)
    start = torch.full((20_000,), 0.7, dtype=torch.float64)
    walked = start.clone()
    for t in range(25):
        walked = (1 - betas[t]).sqrt() * walked + betas[t].sqrt() * torch.randn(
            walked.shape, generator=generator, dtype=torch.float64
        )
    assert float(walked.mean()) == pytest.approx(0.7 * float(task.alpha_bars[24].sqrt()), abs=0.02)
    assert float(walked.std()) == pytest.approx(float((1 - task.alpha_bars[24]).sqrt()), abs=0.02)


def test_ddim_is_deterministic_for_a_seed_and_guidance_mixes(tmp_path) -> None:
    torch.manual_seed(0)
    model = fathom.models.create_for_data("unet", INFO, width=8, conditional=True).eval()
    task = create_for_data("diffusion", INFO, timesteps=50, steps=5)
    assert task.ddim_timesteps(5) == [49, 37, 24, 12, 0]
    first = task.generate(model, INFO, tmp_path / "a", n=4, seed=7, steps=4)
    second = task.generate(model, INFO, tmp_path / "b", n=4, seed=7, steps=4)
    other = task.generate(model, INFO, tmp_path / "c", n=4, seed=8, steps=4)
    a, b, c = (np.load(result["samples_file"]) for result in (first, second, other))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and first["steps"] == 4
    assert np.load(first["labels_file"]).tolist() == [0, 1, 2, 3]
    noisy, labels = torch.randn(2, 1, 28, 28), torch.tensor([1, 2])
    conditional = task.predict_noise(model, noisy, 10, labels, guidance=1.0)
    free = task.predict_noise(model, noisy, 10, None, guidance=1.0)
    mixed = task.predict_noise(model, noisy, 10, labels, guidance=3.0)
    torch.testing.assert_close(mixed, free + 3.0 * (conditional - free), rtol=1e-4, atol=1e-5)
    stochastic = [
        task.sample_images(model, 2, label=1, seed=1, steps=3, eta=1.0)[0] for _ in range(2)
    ]
    assert torch.equal(*stochastic)  # eta > 0 still repeats for a seed


def test_training_loss_and_bad_requests(tmp_path) -> None:
    model = fathom.models.create_for_data("unet", INFO, width=8)
    task = create_for_data("diffusion", INFO, timesteps=50, steps=5, noise_schedule="linear")
    batch = (torch.randn(4, 1, 28, 28), torch.randint(0, 4, (4,)))
    loss, _ = task.training_loss("main", model, batch)
    assert loss.dim() == 0 and 0.1 < float(loss.detach()) < 10
    for request, message in [
        ({"steps": 0}, "--steps must be in 1..50"),
        ({"steps": 51}, "--steps must be in 1..50"),
        ({"label": 0}, "not class-conditional"),
        ({"guidance": 2.0}, "needs a class-conditional model"),
    ]:
        with pytest.raises(ConfigError, match=message):
            task.generate(model, INFO, tmp_path, **request)
    with pytest.raises(ConfigError, match="did you mean 'cosine'"):
        create_for_data("diffusion", INFO, noise_schedule="cosin")
