"""Sample quality measured with a Fathom classifier: a Fréchet distance and per-class accuracy.

``classifier_frechet_distance`` is the Fréchet distance between Gaussians fitted to the
penultimate features (the input of the last linear layer) of a classifier trained with Fathom on
the same dataset, for real and for generated images. It follows the recipe of the FID (Heusel et
al., 2017) but it is NOT the Inception-based FID: the feature space is a small classifier's, so
its values compare models on one dataset with one classifier, not with published FIDs. Small
sample counts bias it upwards; compare numbers computed with the same counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import nn

from fathom.errors import ConfigError


def frechet_distance(
    mean_a: np.ndarray, covariance_a: np.ndarray, mean_b: np.ndarray, covariance_b: np.ndarray
) -> float:
    """‖μ_a - μ_b‖² + Tr(Σ_a + Σ_b - 2 (Σ_a Σ_b)^½): the Fréchet (2-Wasserstein²) distance of
    two Gaussians."""
    mean_a, mean_b = (
        np.atleast_1d(mean_a).astype(np.float64),
        np.atleast_1d(mean_b).astype(np.float64),
    )
    covariance_a = np.atleast_2d(covariance_a).astype(np.float64)
    covariance_b = np.atleast_2d(covariance_b).astype(np.float64)
    # Tr (Σ_a Σ_b)^½ = Σ √λ_i of the symmetric PSD matrix Σ_a^½ Σ_b Σ_a^½ (same eigenvalues as
    # Σ_a Σ_b): stable for singular covariances, no complex round-off as with sqrtm(Σ_a Σ_b).
    root_a = _psd_sqrt(covariance_a)
    eigenvalues = np.linalg.eigvalsh(root_a @ covariance_b @ root_a)
    trace_root = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    difference = mean_a - mean_b
    value = difference @ difference + np.trace(covariance_a) + np.trace(covariance_b)
    return float(max(0.0, value - 2.0 * trace_root))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    eigenvalues, vectors = scipy.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def gaussian_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of feature rows."""
    values = np.asarray(features, dtype=np.float64)
    if values.ndim != 2 or len(values) < 2:
        raise ConfigError(f"need at least 2 feature rows for a covariance, got {values.shape}")
    return values.mean(axis=0), np.cov(values, rowvar=False)


def frechet_distance_of_features(
    features_a: torch.Tensor | np.ndarray, features_b: torch.Tensor | np.ndarray
) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of feature rows."""
    return frechet_distance(*gaussian_statistics(features_a), *gaussian_statistics(features_b))


def _last_linear(classifier: nn.Module) -> nn.Linear:
    linears = [module for module in classifier.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ConfigError(
            f"the quality classifier ({type(classifier).__name__}) has no linear output layer"
        )
    return linears[-1]


@torch.no_grad()
def classify_with_features(
    classifier: nn.Module, inputs: torch.Tensor, batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """(penultimate features, logits) of ``inputs`` (already normalised for the classifier)."""
    captured: list[torch.Tensor] = []
    hook = _last_linear(classifier).register_forward_pre_hook(
        lambda module, arguments: captured.append(arguments[0].detach().flatten(1).float().cpu())
    )
    was_training = classifier.training
    classifier.eval()
    device = next(classifier.parameters()).device
    logits = []
    try:
        for chunk in inputs.split(batch_size):
            logits.append(classifier(chunk.to(device)).float().cpu())
    finally:
        hook.remove()
        classifier.train(was_training)
    return torch.cat(captured), torch.cat(logits)


def normalize_for(
    pixels: torch.Tensor, normalization: dict[str, Sequence[float]] | None
) -> torch.Tensor:
    """Pixels in [0, 1] → the classifier's input space (its training normalisation)."""
    if not normalization:
        return pixels.float()
    shape = (1, -1, 1, 1)
    mean = torch.tensor(normalization["mean"], dtype=torch.float32).view(shape)
    std = torch.tensor(normalization["std"], dtype=torch.float32).view(shape)
    return (pixels.float() - mean) / std


def classifier_quality(
    classifier: nn.Module,
    normalization: dict[str, Sequence[float]] | None,
    real_pixels: torch.Tensor,
    generated_pixels: torch.Tensor,
    labels: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Fréchet distance (classifier features) of generated vs. real pixels in [0, 1]; with
    ``labels`` (the classes asked for), the classifier's accuracy on the samples of each class."""
    if real_pixels.shape[1:] != generated_pixels.shape[1:]:
        raise ConfigError(
            f"real images {list(real_pixels.shape[1:])} and samples "
            f"{list(generated_pixels.shape[1:])} differ in shape"
        )
    real_features, _ = classify_with_features(classifier, normalize_for(real_pixels, normalization))
    fake_features, logits = classify_with_features(
        classifier, normalize_for(generated_pixels, normalization)
    )
    result: dict[str, Any] = {
        "frechet_distance": frechet_distance_of_features(real_features, fake_features),
        "measure": "Frechet distance in a Fathom classifier's penultimate features (not Inception FID)",
        "real_images": len(real_pixels),
        "generated_images": len(generated_pixels),
        "feature_dim": int(real_features.shape[1]),
    }
    if labels is not None:
        labels = labels.cpu().long()
        correct = (logits.argmax(dim=1) == labels).float()
        per_class = {
            int(label): float(correct[labels == label].mean()) for label in labels.unique()
        }
        result["class_accuracy"] = per_class
        result["mean_class_accuracy"] = float(np.mean(list(per_class.values())))
    return result
