"""SimCLR (Chen et al., 2020): two augmented views of each image, pulled together against
every other view in the batch by the NT-Xent loss (normalised temperature-scaled cross-entropy).

``task.temperature`` (default 0.5, SimCLR's CIFAR-10 setting) scales the cosine similarities;
the projection head (``task.projection_hidden`` → ``task.projection_dim``) is dropped after
pretraining, as in the paper: the run keeps the backbone. Options shared with BYOL (views, kNN
monitor) are in ``fathom.tasks.selfsupervised``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError
from fathom.tasks.knn import backbone
from fathom.tasks.selfsupervised import SelfSupervisedTask, mlp_head


def nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of projections ``first`` and ``second`` (N, D), row i of each from image i.

    Each of the 2N views must pick its partner among the 2N - 1 others: cross-entropy over the
    cosine similarities / ``temperature``, averaged over the 2N views."""
    projections = F.normalize(torch.cat([first, second]).float(), dim=1)
    similarity = projections @ projections.T / temperature
    count = len(first)
    similarity.fill_diagonal_(float("-inf"))  # a view is not its own partner
    partners = torch.cat([torch.arange(count, 2 * count), torch.arange(count)])
    return F.cross_entropy(similarity, partners.to(similarity.device))


class SimCLR(SelfSupervisedTask):
    name = "simclr"

    def __init__(self, info: DataInfo, temperature: float = 0.5, **options: Any) -> None:
        if not isinstance(temperature, int | float) or not 0 < temperature <= 10:
            raise ConfigError(f"task.temperature must be in (0, 10], got {temperature!r}")
        super().__init__(info, **options)
        self.temperature = float(temperature)

    @classmethod
    def for_data(
        cls,
        info: DataInfo,
        temperature: float = 0.5,
        projection_dim: int = 128,
        projection_hidden: int = 512,
        min_crop: float | None = None,
        strength: float = 0.5,
        knn_k: int = 200,
        knn_temperature: float = 0.1,
        knn_bank: int = 10_000,
    ) -> SimCLR:
        return cls(
            info, temperature, projection_dim=projection_dim, projection_hidden=projection_hidden,
            min_crop=min_crop, strength=strength, knn_k=knn_k, knn_temperature=knn_temperature,
            knn_bank=knn_bank,
        )  # fmt: skip

    def build_heads(self, feature_dim: int) -> nn.ModuleDict:
        projector = mlp_head(feature_dim, self.projection_hidden, self.projection_dim)
        return nn.ModuleDict({"projector": projector})

    def pair_loss(
        self, model: nn.Module, first: torch.Tensor, second: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        projector = self.ensure_heads(model)["projector"]
        features = backbone(model)
        # One forward pass for both views: batch norm sees 2N images, as in SimCLR.
        projections = projector(features(torch.cat([first, second])).flatten(1))
        loss = nt_xent(*projections.chunk(2), self.temperature)
        return loss, {}
