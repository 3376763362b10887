import pytest
import torch
from torch import nn

from fathom.engine.ema import ModelEMA


def test_ema_warms_up_then_holds_its_decay():
    ema = ModelEMA(nn.Linear(2, 2), decay=0.99)
    assert ema.decay_at(0) == pytest.approx(0.1)
    assert ema.decay_at(90) == pytest.approx(0.91)
    assert ema.decay_at(10_000) == 0.99


def test_ema_update_blends_with_the_effective_decay():
    model = nn.Linear(2, 1, bias=False)
    ema = ModelEMA(model, decay=0.5)
    start = ema.shadow.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, updates=1000)
    assert torch.allclose(ema.shadow.weight, start + 0.5)
    assert not ema.shadow.weight.requires_grad
