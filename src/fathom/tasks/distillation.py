"""Knowledge distillation (Hinton et al., 2015): a student classifier learns from a teacher's
softened outputs mixed with the hard labels.

loss = alpha * T² * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, y)

The teacher is a trained model handed in (``fathom.compress`` loads it from its run's lineage);
it stays in eval mode under ``no_grad``, is not part of the student module, so it is neither in
the optimizer nor in the saved weights. Evaluation and predictions are plain classification.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError
from fathom.tasks.base import Batch
from fathom.tasks.classification import Classification


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """alpha·T²·KL(p_teacher^T || p_student^T) + (1 − alpha)·CE(student, targets), batch mean."""
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1),
        F.log_softmax(teacher_logits / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    hard = F.cross_entropy(student_logits, targets)
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard


class Distillation(Classification):
    name = "distillation"

    def __init__(
        self, num_classes: int, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.9
    ) -> None:
        super().__init__(num_classes)
        if not isinstance(teacher, nn.Module):
            raise ConfigError(
                "the distillation task needs a teacher model: use 'fathom compress RUN "
                "--distill-into MODEL' (or fathom.compress(run, distill_into=...))"
            )
        if temperature <= 0 or not 0.0 <= alpha <= 1.0:
            raise ConfigError(
                f"distillation needs temperature > 0 and 0 <= alpha <= 1 "
                f"(got temperature={temperature}, alpha={alpha})"
            )
        self.teacher = teacher.eval().requires_grad_(False)
        self.temperature, self.alpha = float(temperature), float(alpha)

    @classmethod
    def for_data(
        cls, info: DataInfo, teacher: Any = None, temperature: float = 4.0, alpha: float = 0.9
    ) -> Distillation:
        return cls(int(info.num_classes or 0), teacher, temperature, alpha)

    @torch.no_grad()
    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        self.teacher.eval()  # never trained: no dropout, batch-norm statistics frozen
        device = next(self.teacher.parameters(), torch.empty(0)).device
        if device != inputs.device:
            self.teacher.to(inputs.device)
        return self.teacher(inputs).float()

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, targets = batch
        if targets.is_floating_point():
            raise ConfigError("distillation takes class labels, not soft targets (no mixup)")
        logits = model(inputs)
        loss = distillation_loss(
            logits.float(), self.teacher_logits(inputs), targets, self.temperature, self.alpha
        )
        accuracy = (logits.detach().argmax(dim=1) == targets).float().mean()
        return loss, {"accuracy": accuracy}
