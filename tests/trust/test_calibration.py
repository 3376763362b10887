"""ECE/MCE/NLL/Brier, the bins, and temperature scaling."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fathom.models.calibrated import TemperatureScaled, temperature_scale
from fathom.trust.calibration import bin_index, calibration_metrics, fit_temperature


def test_a_confidence_of_exactly_one_falls_in_the_last_bin_and_bins_are_right_closed() -> None:
    confidence = torch.tensor([0.0, 1 / 15 - 1e-9, 1 / 15 + 1e-9, 0.5, 1.0])
    assert bin_index(confidence).tolist() == [0, 0, 1, 7, 14]


def test_perfectly_calibrated_synthetic_predictor_has_near_zero_ece() -> None:
    generator = torch.Generator().manual_seed(0)
    confidence = 0.5 + 0.5 * torch.rand(200_000, generator=generator)
    correct = torch.rand(200_000, generator=generator) < confidence
    labels = torch.where(correct, 0, 1)
    probabilities = torch.stack([confidence, 1 - confidence], dim=1)
    metrics = calibration_metrics(probabilities, labels)
    assert metrics["ece"] < 0.005
    assert metrics["mce"] < 0.02


def test_metrics_by_hand_on_four_predictions() -> None:
    probabilities = torch.tensor(
        [[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [1.0, 0.0]], dtype=torch.float64
    )
    labels = torch.tensor([0, 1, 0, 0])
    metrics = calibration_metrics(probabilities, labels)
    # bins: 0.9 (two, accuracy 0.5), 0.6 (one, accuracy 1), 1.0 (one, accuracy 1)
    assert math.isclose(metrics["ece"], 0.5 * 0.4 + 0.25 * 0.4 + 0.0, abs_tol=1e-9)
    assert math.isclose(metrics["mce"], 0.4, abs_tol=1e-9)
    brier = ((0.1**2) * 2 + (0.9**2) * 2 + 2 * 0.4**2 + 0) / 4
    assert math.isclose(metrics["brier"], brier, abs_tol=1e-9)
    nll = -(math.log(0.9) + math.log(0.1) + math.log(0.6) + math.log(1.0)) / 4
    assert math.isclose(metrics["nll"], nll, abs_tol=1e-9)


def test_temperature_scaling_recovers_the_temperature_and_lowers_nll() -> None:
    generator = torch.Generator().manual_seed(0)
    true_logits = 2 * torch.randn(5000, 4, generator=generator)
    labels = torch.multinomial(true_logits.softmax(1), 1, generator=generator).squeeze(1)
    overconfident = true_logits * 3
    temperature = fit_temperature(overconfident, labels)
    assert 2.6 < temperature < 3.4
    assert F.cross_entropy(overconfident / temperature, labels) < F.cross_entropy(
        overconfident, labels
    )
    before = calibration_metrics(overconfident.softmax(1), labels)["ece"]
    after = calibration_metrics((overconfident / temperature).softmax(1), labels)["ece"]
    assert after < before / 2


def test_the_temperature_transform_divides_the_logits() -> None:
    model = torch.nn.Linear(3, 2)
    scaled = temperature_scale(model, 2.0)
    assert isinstance(scaled, TemperatureScaled)
    inputs = torch.randn(4, 3)
    assert torch.allclose(scaled(inputs), model(inputs) / 2)
    assert "temperature" in scaled.state_dict()
