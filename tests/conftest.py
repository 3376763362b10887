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


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """A run sets torch's thread count for the whole process (``train.threads``): put it back, so
    one test's setting does not slow or change the next."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
