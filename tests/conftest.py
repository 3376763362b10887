"""Shared fixtures: the repository's shared datasets and small synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fathom.data.bundle import DataBundle
from tests_support import REPO, make_blobs  # noqa: F401 - re-exported for older imports

# FATHOM_BENCH_DATA: where the datasets are on a machine without ../shared (the GPU machine)
SHARED_DATASETS = Path(os.environ.get("FATHOM_BENCH_DATA", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not (SHARED_DATASETS / "mnist").is_dir():
        pytest.skip("../shared/datasets is not available")
    return SHARED_DATASETS


@pytest.fixture
def blobs() -> DataBundle:
    return make_blobs()
