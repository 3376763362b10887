"""BYOL (Grill et al., 2020): an online network learns to predict a target network's projection
of another view of the same image; the target is an exponential moving average of the online
network and gets no gradient (stop-gradient), so no negative pairs are needed.

Online: backbone (the model's ``features``) → projector → predictor. Target: copies of the
backbone and projector, updated after every optimizer step as
``target = τ·target + (1 - τ)·online`` with ``τ`` rising from ``task.momentum`` to 1 along a
cosine over training (``τ_k = 1 - (1 - τ_base)·(cos(πk/K) + 1)/2``). The loss is
``2 - 2·cos(prediction, target projection)``, symmetrised over the two views. The target and
heads are the task's state, saved in checkpoints, so resume is bitwise exact.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.engine.callbacks import Callback
from fathom.errors import ConfigError
from fathom.tasks.knn import backbone
from fathom.tasks.selfsupervised import SelfSupervisedTask, mlp_head


def momentum_at(base: float, step: int, total: int) -> float:
    """BYOL's target decay after ``step`` of ``total`` updates: ``base`` rising to 1 (cosine)."""
    progress = min(1.0, step / max(1, total))
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``2 - 2·cos``: the squared distance of the L2-normalised vectors, per example, averaged."""
    cosine = F.cosine_similarity(prediction.float(), target.float(), dim=1)
    return (2.0 - 2.0 * cosine).mean()


class BYOL(SelfSupervisedTask):
    name = "byol"

    def __init__(self, info: DataInfo, momentum: float = 0.99, **options: Any) -> None:
        if not isinstance(momentum, int | float) or not 0.0 <= momentum <= 1.0:
            raise ConfigError(f"task.momentum must be between 0 and 1, got {momentum!r}")
        super().__init__(info, **options)
        self.momentum = float(momentum)

    @classmethod
    def for_data(
        cls,
        info: DataInfo,
        momentum: float = 0.99,
        projection_dim: int = 128,
        projection_hidden: int = 512,
        min_crop: float | None = None,
        strength: float = 0.5,
        knn_k: int = 200,
        knn_temperature: float = 0.1,
        knn_bank: int = 10_000,
    ) -> BYOL:
        return cls(
            info, momentum, projection_dim=projection_dim, projection_hidden=projection_hidden,
            min_crop=min_crop, strength=strength, knn_k=knn_k, knn_temperature=knn_temperature,
            knn_bank=knn_bank,
        )  # fmt: skip

    def build_heads(self, feature_dim: int) -> nn.ModuleDict:
        projector = mlp_head(feature_dim, self.projection_hidden, self.projection_dim)
        predictor = mlp_head(self.projection_dim, self.projection_hidden, self.projection_dim)
        return nn.ModuleDict({"projector": projector, "predictor": predictor})

    def ensure_heads(self, model: nn.Module) -> nn.ModuleDict:
        """The online heads and, beside them, the target: copies of backbone and projector."""
        if self.heads is None:
            heads = super().ensure_heads(model)
            target = nn.ModuleDict(
                {
                    "backbone": copy.deepcopy(backbone(model)),
                    "projector": copy.deepcopy(heads["projector"]),
                }
            )
            for parameter in target.parameters():
                parameter.requires_grad_(False)
            heads["target"] = target
        return self.heads

    def pair_loss(
        self, model: nn.Module, first: torch.Tensor, second: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        heads = self.ensure_heads(model)
        views = torch.cat([first, second])
        online = heads["predictor"](heads["projector"](backbone(model)(views).flatten(1)))
        target = heads["target"]
        target.train(model.training)
        with torch.no_grad():  # stop-gradient: the target only follows, by the EMA
            goal = target["projector"](target["backbone"](views).flatten(1))
        online_first, online_second = online.chunk(2)
        goal_first, goal_second = goal.chunk(2)
        loss = regression_loss(online_first, goal_second) + regression_loss(
            online_second, goal_first
        )
        return loss, {}

    @torch.no_grad()
    def update_target(self, model: nn.Module, momentum: float) -> None:
        """``target = momentum·target + (1 - momentum)·online``; buffers (batch-norm statistics)
        are copied."""
        heads = self.ensure_heads(model)
        target = heads["target"]
        pairs = [(target["backbone"], backbone(model)), (target["projector"], heads["projector"])]
        for follower, leader in pairs:
            followers = list(follower.parameters())
            leaders = [parameter.detach() for parameter in leader.parameters()]
            torch._foreach_lerp_(followers, leaders, 1.0 - momentum)
            for own, theirs in zip(follower.buffers(), leader.buffers(), strict=True):
                own.copy_(theirs)

    def callbacks(self, run_dir: Any) -> list[Callback]:
        return [*super().callbacks(run_dir), TargetUpdate(self)]


class TargetUpdate(Callback):
    """After each optimizer step, moves BYOL's target towards the online network (before the
    checkpointer saves, so a checkpoint holds the updated target)."""

    order = -50

    def __init__(self, task: BYOL) -> None:
        self.task = task
        self.updated_at = 0

    def fit_start(self, trainer: Any) -> None:
        self.updated_at = trainer.state.optimizer_steps  # a resumed target is already there

    def batch_end(self, trainer: Any) -> None:
        steps = trainer.state.optimizer_steps
        if steps > self.updated_at:
            tau = momentum_at(self.task.momentum, steps - 1, trainer.schedule.total_steps)
            self.task.update_target(trainer.model, tau)
            self.updated_at = steps
