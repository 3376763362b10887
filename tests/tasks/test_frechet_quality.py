"""The Fréchet distance against closed forms, and the classifier-based quality measure."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from fathom.errors import ConfigError
from fathom.tasks.quality import (
    classifier_quality,
    frechet_distance,
    frechet_distance_of_features,
)


def test_frechet_distance_of_gaussians_matches_closed_forms() -> None:
    rng = np.random.default_rng(0)
    # diagonal covariances: ‖μ_a - μ_b‖² + Σ (√a_i - √b_i)²
    mean_a, mean_b = rng.normal(size=5), rng.normal(size=5)
    diagonal_a, diagonal_b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum(
        (np.sqrt(diagonal_a) - np.sqrt(diagonal_b)) ** 2
    )
    value = frechet_distance(mean_a, np.diag(diagonal_a), mean_b, np.diag(diagonal_b))
    assert value == pytest.approx(expected, rel=1e-9)
    # a rotation of both covariances changes nothing; equal covariances leave the mean term
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    rotated = frechet_distance(
        rotation @ mean_a, rotation @ np.diag(diagonal_a) @ rotation.T,
        rotation @ mean_b, rotation @ np.diag(diagonal_b) @ rotation.T,
    )  # fmt: skip
    assert rotated == pytest.approx(expected, rel=1e-7)
    square = rng.normal(size=(5, 5))
    shared = square @ square.T + np.eye(5)
    assert frechet_distance(mean_a, shared, mean_b, shared) == pytest.approx(
        np.sum((mean_a - mean_b) ** 2), abs=1e-7
    )
    assert frechet_distance(mean_a, shared, mean_a, shared) == pytest.approx(0.0, abs=1e-7)
    # general covariances: the definition with scipy's matrix square root
    other = rng.normal(size=(5, 5))
    covariance_b = other @ other.T + 0.1 * np.eye(5)
    root = np.real(scipy.linalg.sqrtm(shared @ covariance_b))
    definition = np.sum((mean_a - mean_b) ** 2) + np.trace(shared + covariance_b - 2 * root)
    value = frechet_distance(mean_a, shared, mean_b, covariance_b)
    assert value == pytest.approx(definition, rel=1e-7)
    # one dimension: (μ_a - μ_b)² + (σ_a - σ_b)²
    assert frechet_distance(1.0, 4.0, -1.0, 1.0) == pytest.approx(4.0 + 1.0)


def test_frechet_distance_of_samples_estimates_the_gaussian_one() -> None:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(20_000, 3, generator=generator, dtype=torch.float64)
    b = torch.randn(20_000, 3, generator=generator, dtype=torch.float64) * 2 + 1
    assert frechet_distance_of_features(a, b) == pytest.approx(3 * 1 + 3 * 1, rel=0.03)
    with pytest.raises(ConfigError, match="at least 2 feature rows"):
        frechet_distance_of_features(a[:1], b)


def test_classifier_quality_uses_penultimate_features_and_scores_classes() -> None:
    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.ReLU(), nn.Linear(6, 3))
    real = torch.rand(200, 1, 4, 4)
    same = classifier_quality(classifier, None, real, real.clone())
    assert same["frechet_distance"] == pytest.approx(0.0, abs=1e-6) and same["feature_dim"] == 6
    shifted = classifier_quality(
        classifier, {"mean": [0.5], "std": [0.25]}, real, real.flip(0) * 0.3
    )
    assert shifted["frechet_distance"] > 0.01
    with torch.no_grad():
        predicted = classifier(real).argmax(dim=1)
    scored = classifier_quality(classifier, None, real, real, labels=predicted)
    assert scored["mean_class_accuracy"] == 1.0
    assert set(scored["class_accuracy"]) == set(predicted.unique().tolist())
    with pytest.raises(ConfigError, match="differ in shape"):
        classifier_quality(classifier, None, real, torch.rand(5, 1, 8, 2))
