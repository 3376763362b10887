"""Classification: cross-entropy (with label smoothing and soft mixup targets), accuracy, top-k."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.engine.metrics import ClassificationMetrics
from fathom.errors import DataError
from fathom.tasks.base import Batch, Task, probe_outputs


class Classification(Task):
    name = "classification"
    monitor = "accuracy"
    monitor_mode = "max"

    def __init__(self, num_classes: int, label_smoothing: float = 0.0) -> None:
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    @classmethod
    def for_data(cls, info: DataInfo, label_smoothing: float = 0.0) -> Classification:
        return cls(int(info.num_classes or 0), label_smoothing)

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        outputs = probe_outputs(model, batch[0])
        if outputs.dim() != 2 or outputs.shape[1] != self.num_classes:
            raise DataError(
                f"the model outputs shape {list(outputs.shape)} but the dataset has "
                f"{self.num_classes} classes: expected [batch, {self.num_classes}]"
            )

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, targets = batch
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        hard_targets = targets.argmax(dim=1) if targets.is_floating_point() else targets
        accuracy = (logits.detach().argmax(dim=1) == hard_targets).float().mean()
        return loss, {"accuracy": accuracy}

    def new_metrics(self, device: torch.device) -> ClassificationMetrics:
        return ClassificationMetrics(self.num_classes, device)

    def evaluation_step(
        self, model: nn.Module, batch: Batch, metrics: ClassificationMetrics
    ) -> None:
        inputs, targets = batch
        logits = model(inputs).float()
        loss_sum = F.cross_entropy(logits, targets, reduction="sum")
        metrics.update(logits, targets, loss_sum)

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return model(inputs).float().softmax(dim=1)
