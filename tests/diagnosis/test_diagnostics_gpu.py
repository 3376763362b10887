"""Diagnostics on a CUDA device (bf16 autocast): statistics recorded, doctor silent on a healthy
run, training unchanged. Skipped cleanly without CUDA."""

import pytest
import torch
from torch import nn

from fathom.config import OptimConfig, TrainConfig
from fathom.data.loader import TensorLoader
from fathom.diagnosis import Diagnostics
from fathom.engine import Trainer
from fathom.tasks.classification import Classification

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def fit(bundle, callbacks):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    trainer = Trainer(
        model, Classification(3),
        TensorLoader(bundle.train, 16, shuffle=True, seed=0, device="cuda"),
        TensorLoader(bundle.val, 64, device="cuda"),
        train=TrainConfig(epochs=3, precision="bf16"), optim=OptimConfig(name="adam", lr=0.01),
        callbacks=callbacks, device="cuda",
    )  # fmt: skip
    trainer.fit()
    return trainer


def test_diagnostics_on_cuda(blobs):
    diagnostics = Diagnostics(None, blobs)
    with_diagnostics = fit(blobs, [diagnostics])
    without = fit(blobs, [])
    for a, b in zip(with_diagnostics.model.parameters(), without.model.parameters(), strict=True):
        assert torch.equal(a, b)
    sample = next(r for r in diagnostics.records if r["kind"] == "sample")
    assert sample["layers"]["0"]["grad_norm"] > 0
    assert diagnostics.diagnoses == []
