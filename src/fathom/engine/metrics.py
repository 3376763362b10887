"""Metrics accumulated on the training device and read once per evaluation (no per-batch sync)."""

from __future__ import annotations

from typing import Any

import torch


class ClassificationMetrics:
    """Loss, accuracy, top-k accuracy, confusion matrix and per-class precision/recall/F1."""

    def __init__(self, num_classes: int, device: torch.device, top_k: int = 5) -> None:
        self.num_classes = num_classes
        self.top_k = min(top_k, num_classes)
        self.confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.top_k_correct = torch.zeros((), dtype=torch.long, device=device)
        self.count = 0

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss_sum: torch.Tensor) -> None:
        """Add a batch: raw logits (N, C), integer targets (N,), and the summed loss of the batch."""
        predictions = logits.argmax(dim=1)
        self.confusion += torch.bincount(
            targets * self.num_classes + predictions, minlength=self.num_classes**2
        )
        if self.top_k > 1:
            top = logits.topk(self.top_k, dim=1).indices
            self.top_k_correct += (top == targets[:, None]).any(dim=1).sum()
        self.loss_sum += loss_sum.double()
        self.count += len(targets)

    def compute(self) -> dict[str, Any]:
        """Scalar metrics (``loss``, ``accuracy``, ``top5_accuracy``) as floats."""
        confusion = self.confusion.view(self.num_classes, self.num_classes)
        count = max(1, self.count)
        metrics = {
            "loss": float(self.loss_sum) / count,
            "accuracy": float(confusion.diagonal().sum()) / count,
        }
        if self.top_k > 1:
            metrics[f"top{self.top_k}_accuracy"] = float(self.top_k_correct) / count
        return metrics

    def details(self) -> dict[str, Any]:
        """Per-class precision, recall, F1, support and the confusion matrix (rows: true class)."""
        confusion = self.confusion.view(self.num_classes, self.num_classes).double().cpu()
        true_positive = confusion.diagonal()
        predicted = confusion.sum(dim=0)
        support = confusion.sum(dim=1)
        precision = torch.where(predicted > 0, true_positive / predicted.clamp_min(1), 0.0)
        recall = torch.where(support > 0, true_positive / support.clamp_min(1), 0.0)
        denominator = (precision + recall).clamp_min(1e-12)
        f1 = torch.where(precision + recall > 0, 2 * precision * recall / denominator, 0.0)
        return {
            "per_class": {
                "precision": precision.tolist(),
                "recall": recall.tolist(),
                "f1": f1.tolist(),
                "support": support.long().tolist(),
            },
            "macro_f1": float(f1.mean()),
            "confusion_matrix": confusion.long().tolist(),
        }


class RegressionMetrics:
    """Loss, MAE, RMSE and R² from running sums."""

    def __init__(self, device: torch.device) -> None:
        zeros = [torch.zeros((), dtype=torch.float64, device=device) for _ in range(6)]
        self.loss_sum, self.abs_sum, self.sq_sum, self.target_sum, self.target_sq_sum, _ = zeros
        self.count = 0
        self.sample: dict[str, list[float]] = {"target": [], "prediction": []}

    @torch.no_grad()
    def update(
        self, predictions: torch.Tensor, targets: torch.Tensor, loss_sum: torch.Tensor
    ) -> None:
        predictions, targets = predictions.double().reshape(-1), targets.double().reshape(-1)
        error = predictions - targets
        self.loss_sum += loss_sum.double()
        self.abs_sum += error.abs().sum()
        self.sq_sum += error.square().sum()
        self.target_sum += targets.sum()
        self.target_sq_sum += targets.square().sum()
        self.count += len(targets)
        if len(self.sample["target"]) < 1000:
            room = 1000 - len(self.sample["target"])
            self.sample["target"] += targets[:room].tolist()
            self.sample["prediction"] += predictions[:room].tolist()

    def compute(self) -> dict[str, Any]:
        count = max(1, self.count)
        variance = float(self.target_sq_sum) / count - (float(self.target_sum) / count) ** 2
        mse = float(self.sq_sum) / count
        return {
            "loss": float(self.loss_sum) / count,
            "mae": float(self.abs_sum) / count,
            "rmse": mse**0.5,
            "r2": 1.0 - mse / variance if variance > 0 else 0.0,
        }

    def details(self) -> dict[str, Any]:
        return {"predictions_sample": self.sample}
