"""Fine-tuning inside compression: short recipe copies, frozen (EMA) models made trainable."""

from __future__ import annotations

import torch
from torch import nn

from fathom.compression.stages import short_config, train_model
from fathom.config import validate_config


def test_fine_tuning_trains_a_frozen_weight_average(blobs) -> None:
    torch.manual_seed(0)
    model = nn.Linear(6, 3).requires_grad_(False)  # as fathom.fit returns an EMA run's model
    before = model.weight.detach().clone()
    config = validate_config({"data": {"name": "blobs", "batch_size": 32}, "run": {"progress": "none"},
                              "train": {"epochs": 5, "ema_decay": 0.9}})  # fmt: skip
    short = short_config(config, 1)
    assert short.train.epochs == 1 and short.train.ema_decay is None
    train_model(short, model, blobs)
    assert not torch.equal(model.weight, before) and not model.training
