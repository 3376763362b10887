"""Shared fixtures: the repository's shared datasets and small synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from fathom.data.bundle import DataBundle, DataInfo, Split

REPO = Path(__file__).resolve().parents[1]
# FATHOM_BENCH_DATA: where the datasets are on a machine without ../shared (the GPU machine)
SHARED_DATASETS = Path(os.environ.get("FATHOM_BENCH_DATA", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not (SHARED_DATASETS / "mnist").is_dir():
        pytest.skip("../shared/datasets is not available")
    return SHARED_DATASETS


def make_blobs(count: int = 240, classes: int = 3, features: int = 6, seed: int = 0) -> DataBundle:
    """Linearly separable Gaussian blobs: a classification problem any model learns in seconds."""
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=generator) * 4
    targets = torch.arange(count) % classes
    inputs = centers[targets] + torch.randn(count, features, generator=generator)
    order = torch.randperm(count, generator=generator)
    inputs, targets = inputs[order], targets[order]
    cut_val, cut_test = int(count * 0.7), int(count * 0.85)
    info = DataInfo(
        name="blobs",
        task="classification",
        input_shape=(features,),
        num_classes=classes,
        class_names=[f"c{i}" for i in range(classes)],
    )
    return DataBundle(
        info,
        Split(inputs[:cut_val], targets[:cut_val]),
        Split(inputs[cut_val:cut_test], targets[cut_val:cut_test]),
        Split(inputs[cut_test:], targets[cut_test:]),
    )


@pytest.fixture
def blobs() -> DataBundle:
    return make_blobs()
