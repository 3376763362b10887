"""Test-time augmentation in classification: views, weights, invariance, and the no-view case."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fathom.data.bundle import Split
from fathom.data.loader import make_loader
from fathom.data.tta import tta_views
from fathom.engine.trainer import evaluate
from fathom.errors import ConfigError
from fathom.tasks.classification import Classification


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def scores(task: Classification, inputs: torch.Tensor, targets: torch.Tensor) -> dict:
    loader = make_loader(Split(inputs, targets), 16, device=torch.device("cpu"))
    return evaluate(small_net(), task, loader, torch.device("cpu"))[0]


def test_views_and_weights() -> None:
    inputs = torch.randn(2, 3, 8, 8)
    views = tta_views(inputs, ["flip", "translate"])
    assert len(views) == 6 and sum(weight for _, weight in views) == pytest.approx(1.0)
    assert torch.equal(views[1][0], inputs.flip(3))
    shifted = views[2][0]  # one pixel to the down-right: the old row 0 is now row 1
    assert torch.equal(shifted[..., 1:, 1:], inputs[..., :-1, :-1])
    assert tta_views(inputs, []) == [(inputs, 1.0)]


def test_no_views_equals_plain_evaluation() -> None:
    inputs, targets = torch.randn(40, 3, 8, 8), torch.arange(40) % 5
    plain = scores(Classification(5), inputs, targets)
    assert scores(Classification(5, tta=[]), inputs, targets) == plain
    # One view through the averaging path gives the same numbers as the plain path.
    averaged = Classification(5, tta=["flip"])
    averaged.tta = ()
    assert scores(averaged, inputs, targets) == plain


def test_flip_tta_is_flip_invariant_and_changes_scores() -> None:
    inputs, targets = torch.randn(40, 3, 8, 8), torch.arange(40) % 5
    task = Classification(5, tta=["flip"])
    original = scores(task, inputs, targets)
    mirrored = scores(task, inputs.flip(3), targets)
    assert original["accuracy"] == mirrored["accuracy"]
    assert original["loss"] == pytest.approx(mirrored["loss"], rel=1e-5)
    assert original["loss"] != pytest.approx(scores(Classification(5), inputs, targets)["loss"])
    probabilities = task.predict(small_net().eval(), inputs)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(40))
    torch.testing.assert_close(probabilities, task.predict(small_net().eval(), inputs.flip(3)))


def test_unknown_view_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="task.tta: unknown view 'flp'.*'flip'"):
        Classification(5, tta=["flp"])
    with pytest.raises(ConfigError, match="task.tta must be a list"):
        Classification(5, tta="flip")
