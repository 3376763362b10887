"""Shared fixtures: the repository's shared datasets and small synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from fathom.data.bundle import DataBundle
from tests_support import REPO, make_blobs  # noqa: F401 - re-exported for older imports

SESSION_THREADS = torch.get_num_threads()

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
def session_torch_threads():
    """Every test starts and ends with torch's thread count of the session's start. A run sets it
    for the whole process (``train.threads``, also from module-scoped fixtures), and results that
    are compared bitwise depend on it (a parallel reduction sums in another order)."""
    torch.set_num_threads(SESSION_THREADS)
    yield
    torch.set_num_threads(SESSION_THREADS)
