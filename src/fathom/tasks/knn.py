"""The weighted k-nearest-neighbour classifier of self-supervised learning's kNN monitor.

As in InstDisc (Wu et al., 2018) and the SimCLR/MoCo reproductions: features are L2-normalised,
each query's ``k`` most cosine-similar bank examples vote for their class with weight
``exp(similarity / temperature)``, and the class with the largest total wins.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def knn_predict(
    queries: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
) -> torch.Tensor:
    """Class predictions (N,) for ``queries`` (N, D) from ``bank`` (M, D) with ``bank_labels``.

    ``bank`` must already be L2-normalised (``normalised_features``); queries are normalised here.
    """
    queries = F.normalize(queries.float(), dim=1)
    # In float32 even under a bf16 autocast (precision auto): bf16's 8-bit mantissa would tie
    # near neighbours and give votes of another dtype than the float32 tally.
    with torch.autocast(queries.device.type, enabled=False):
        similarity = queries @ bank.float().T  # (N, M)
    top, index = similarity.topk(min(k, len(bank)), dim=1)
    weights = (top / temperature).exp()
    votes = torch.zeros(len(queries), num_classes, device=queries.device)
    votes.scatter_add_(1, bank_labels[index], weights)
    return votes.argmax(dim=1)


def backbone(network: nn.Module) -> nn.Module:
    """The ``features`` of a model with the transfer contract, through DDP and compile wrappers."""
    for attribute in ("module", "_orig_mod"):
        inner = getattr(network, attribute, None)
        if isinstance(inner, nn.Module) and not hasattr(network, "features"):
            network = inner
    return network.features


@torch.no_grad()
def normalised_features(
    features: nn.Module, inputs: torch.Tensor, batch_size: int = 512
) -> torch.Tensor:
    """L2-normalised ``features`` of ``inputs`` (as float32), computed in batches."""
    chunks = [features(chunk).float().flatten(1) for chunk in inputs.split(batch_size)]
    return F.normalize(torch.cat(chunks), dim=1)


def bank_subset(
    inputs: torch.Tensor, targets: torch.Tensor, limit: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``limit`` examples, a fixed random subset (seed 0: the same at every evaluation,
    and classes mixed even where the split is sorted by class)."""
    if len(inputs) <= limit:
        return inputs, targets
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))[:limit]
    order = order.to(inputs.device)
    return inputs.index_select(0, order), targets.index_select(0, order.to(targets.device))


class SelfSupervisedMetrics:
    """The evaluation loss (on seeded views) and the kNN accuracy of a split's examples.

    ``bank``: (inputs, labels) of the memory bank, encoded once per evaluation by the first
    ``evaluation_step``; None leaves out ``knn_accuracy``."""

    def __init__(
        self,
        device: torch.device,
        bank: tuple[torch.Tensor, torch.Tensor] | None,
        num_classes: int,
    ) -> None:
        self.device = device
        self.bank = bank
        self.num_classes = num_classes
        self.bank_features: torch.Tensor | None = None
        self.generator = torch.Generator(device=device).manual_seed(0)  # the same views each time
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.loss_count = 0
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.knn_count = 0

    def add_loss(self, loss: torch.Tensor, count: int) -> None:
        self.loss_sum += loss.detach().double() * count
        self.loss_count += count

    def add_knn(self, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        self.correct += (predictions == labels.to(predictions.device)).sum()
        self.knn_count += len(labels)

    def compute(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.loss_count:
            result["loss"] = float(self.loss_sum) / self.loss_count
        if self.knn_count:
            result["knn_accuracy"] = int(self.correct) / self.knn_count
        return result

    def details(self) -> dict[str, Any]:
        return {"knn_examples": self.knn_count, "knn_bank": len(self.bank[0]) if self.bank else 0}
