"""Knowledge distillation: the loss is Hinton's formula; the teacher is never trained."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from fathom.assemble import build_trainer
from fathom.config import validate_config
from fathom.errors import ConfigError
from fathom.tasks.distillation import Distillation, distillation_loss


def test_distillation_loss_equals_its_formula() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 4), torch.randn(5, 4)
    targets = torch.tensor([0, 3, 1, 2, 0])
    temperature, alpha = 3.0, 0.7
    p_teacher = torch.softmax(teacher / temperature, dim=1)
    p_student = torch.softmax(student / temperature, dim=1)
    kl = (p_teacher * (p_teacher.log() - p_student.log())).sum(dim=1).mean()
    cross_entropy = -torch.log_softmax(student, dim=1)[torch.arange(5), targets].mean()
    expected = alpha * temperature**2 * kl + (1 - alpha) * cross_entropy
    actual = distillation_loss(student, teacher, targets, temperature, alpha)
    torch.testing.assert_close(actual, expected)


def test_the_teacher_is_never_trained_nor_saved(blobs) -> None:
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.5), nn.Linear(16, 3))
    student = nn.Linear(6, 3)
    frozen = copy.deepcopy(teacher.state_dict())
    config = validate_config({"data": {"name": "blobs", "batch_size": 32},
                              "train": {"epochs": 2}, "run": {"progress": "none"}})  # fmt: skip
    task = Distillation.for_data(blobs.info, teacher=teacher, temperature=2.0, alpha=0.5)
    trainer = build_trainer(config, student, blobs, None, task=task)
    trainer.fit()
    for name, value in teacher.state_dict().items():
        torch.testing.assert_close(value, frozen[name])
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert set(student.state_dict()) == {"weight", "bias"}  # no teacher tensors
    optimised = {
        id(p)
        for optimizer in trainer.optimizers.values()
        for group in optimizer.param_groups
        for p in group["params"]
    }
    assert not optimised & {id(p) for p in teacher.parameters()}


def test_distillation_without_a_teacher_is_one_clear_error(blobs) -> None:
    with pytest.raises(ConfigError, match="needs a teacher"):
        Distillation.for_data(blobs.info)
    with pytest.raises(ConfigError, match="temperature"):
        Distillation.for_data(blobs.info, teacher=nn.Linear(6, 3), temperature=0)


def test_a_label_smoothed_teacher_gets_a_note() -> None:
    from types import SimpleNamespace

    from fathom.compression.stages import label_smoothing_note

    def teacher(smoothing: float) -> SimpleNamespace:
        return SimpleNamespace(config=validate_config({"train": {"label_smoothing": smoothing}}))

    assert label_smoothing_note(teacher(0.0)) is None
    assert "train.label_smoothing=0" in label_smoothing_note(teacher(0.1))
