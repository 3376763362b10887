"""What the self-supervised image tasks (SimCLR, BYOL) share: heads, views, the kNN monitor.

The model trains through the transfer contract: only its ``features`` (the backbone) learn;
its classifier ``head`` stays as built (sized to the dataset's classes, untrained), so the run
saves a normal model of its registered name, and ``fathom finetune runs/SSL DATA`` starts from
its features (with a fresh head). The projection head (and BYOL's predictor and target network)
live in the task: ``optimizer_groups`` builds them on the model's device and hands their
parameters to the optimizer beside the backbone's, and ``state_dict`` puts them in checkpoints.

At each evaluation a weighted kNN classifier (``knn.py``) on the backbone's features scores the
validation split against a memory bank of training examples: ``knn_accuracy``, the monitor.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.engine.callbacks import Callback
from fathom.errors import ConfigError, DataError
from fathom.tasks.base import Batch, Task
from fathom.tasks.knn import (
    SelfSupervisedMetrics,
    backbone,
    bank_subset,
    knn_predict,
    normalised_features,
)
from fathom.tasks.views import ViewMaker


def mlp_head(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    """Linear → batch norm → ReLU → linear: SimCLR's projection head, BYOL's projector and
    predictor."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_features),
    )


def check_image_data(name: str, info: DataInfo) -> None:
    if len(info.input_shape) != 3:
        raise DataError(
            f"task {name} learns from images (channels, height, width), but dataset "
            f"'{info.name}' has inputs of shape {list(info.input_shape)}"
        )


class SelfSupervisedTask(Task):
    """Base of SimCLR and BYOL: subclasses build ``heads`` and give ``pair_loss``."""

    monitor = "knn_accuracy"
    monitor_mode = "max"

    def __init__(
        self,
        info: DataInfo,
        projection_dim: int = 128,
        projection_hidden: int = 512,
        min_crop: float | None = None,
        strength: float = 0.5,
        knn_k: int = 200,
        knn_temperature: float = 0.1,
        knn_bank: int = 10_000,
    ) -> None:
        check_image_data(self.name, info)
        if projection_dim < 1 or projection_hidden < 1:
            raise ConfigError(
                f"task.projection_dim and task.projection_hidden must be positive, got "
                f"{projection_dim} and {projection_hidden}"
            )
        if knn_k < 0 or knn_bank < 0 or knn_temperature <= 0:
            raise ConfigError(
                "task.knn_k and task.knn_bank must be >= 0 (0 turns the kNN monitor off) and "
                f"task.knn_temperature > 0, got {knn_k}, {knn_bank} and {knn_temperature}"
            )
        self.info = info
        self.projection_dim, self.projection_hidden = projection_dim, projection_hidden
        self.views = ViewMaker(min_crop, strength)
        self.knn_k, self.knn_temperature, self.knn_bank = knn_k, knn_temperature, knn_bank
        self.num_classes = int(info.num_classes or 0)
        if not (self.knn_k and self.knn_bank and self.num_classes):
            self.monitor, self.monitor_mode = "loss", "min"
        self.heads: nn.ModuleDict | None = None  # built on the model's device
        self.bank: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def for_data(cls, info: DataInfo, **options: Any) -> SelfSupervisedTask:
        return cls(info, **options)

    # ------------------------------------------------------------ heads and state
    def build_heads(self, feature_dim: int) -> nn.ModuleDict:
        """The task's own modules for a backbone of ``feature_dim`` features."""
        raise NotImplementedError

    def ensure_heads(self, model: nn.Module) -> nn.ModuleDict:
        """The heads, built once, sized by probing the backbone, on the model's device."""
        if self.heads is None:
            features = backbone(model)
            device = next(model.parameters()).device
            was_training = features.training
            features.eval()
            with torch.no_grad():
                probe = features(torch.zeros(2, *self.info.input_shape, device=device))
            features.train(was_training)
            self.heads = self.build_heads(int(probe.flatten(1).shape[1])).to(device)
        return self.heads

    def optimizer_groups(self, model: nn.Module) -> dict[str, Iterable[nn.Parameter]]:
        """The backbone's parameters and the task's heads' (the classifier head stays out)."""
        check_contract(self.name, model)
        heads = self.ensure_heads(model)
        trained = [p for p in backbone(model).parameters() if p.requires_grad]
        return {"main": trained + [p for p in heads.parameters() if p.requires_grad]}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {} if self.heads is None else dict(self.heads.state_dict())

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state and self.heads is not None:
            self.heads.load_state_dict(state)

    # ------------------------------------------------------------ training
    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        check_contract(self.name, model)
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if distributed and torch.distributed.get_world_size() > 1:  # heads outside DDP
            raise ConfigError(f"task {self.name} trains in one process; drop --nproc")

    def check_data(self, bundle: DataBundle) -> None:
        check_image_data(self.name, bundle.info)

    def pair_loss(
        self, model: nn.Module, first: torch.Tensor, second: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of two views of the same images (and values to log)."""
        raise NotImplementedError

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.ensure_heads(model).train(model.training)
        first, second = self.views.views(batch[0])  # the global RNG: checkpoints capture it
        return self.pair_loss(model, first, second)

    # ------------------------------------------------------------ evaluation
    def callbacks(self, run_dir: Path | None) -> list[Callback]:
        return [MemoryBank(self)]

    def attach_bank(self, inputs: torch.Tensor | None, targets: torch.Tensor | None) -> None:
        """Training examples for the kNN monitor (at most ``knn_bank``; labels are used here
        only, to score the features: training never sees them)."""
        if inputs is None or targets is None or not self.knn_k or not self.num_classes:
            self.bank = None
            return
        self.bank = bank_subset(inputs, targets, self.knn_bank) if self.knn_bank else None

    def attach_data(self, bundle: DataBundle) -> None:
        train = bundle.train
        if isinstance(train, Split):
            self.attach_bank(train.inputs, train.targets)

    def new_metrics(self, device: torch.device) -> SelfSupervisedMetrics:
        return SelfSupervisedMetrics(device, self.bank, self.num_classes)

    def evaluation_step(
        self, model: nn.Module, batch: Batch, metrics: SelfSupervisedMetrics
    ) -> None:
        inputs, targets = batch
        if self.heads is not None:  # seeded views: the same at every evaluation
            self.heads.train(model.training)
            first, second = self.views.views(inputs, metrics.generator)
            loss, _ = self.pair_loss(model, first, second)
            metrics.add_loss(loss.float(), len(inputs))
        if metrics.bank is None:
            return
        features = backbone(model)
        if metrics.bank_features is None:
            bank_inputs, bank_labels = metrics.bank
            metrics.bank_features = normalised_features(features, bank_inputs.to(inputs.device))
            metrics.bank = (bank_inputs, bank_labels.to(inputs.device))
        predictions = knn_predict(
            features(inputs).float().flatten(1), metrics.bank_features, metrics.bank[1],
            self.num_classes, self.knn_k, self.knn_temperature,
        )  # fmt: skip
        metrics.add_knn(predictions, targets)

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """The backbone's features: what a self-supervised model gives (its head is untrained)."""
        return backbone(model)(inputs).float().flatten(1)


def check_contract(name: str, model: nn.Module) -> None:
    try:
        features = backbone(model)
    except AttributeError:
        features = None
    if not isinstance(features, nn.Module):
        raise ConfigError(
            f"task {name} trains a model's backbone through the transfer contract (.features, "
            f".head); {type(model).__name__} has no .features (use cnn, resnet, convnet, vit, ...)"
        )


class MemoryBank(Callback):
    """Hands the training split's examples to the task's kNN monitor when training starts."""

    order = -90

    def __init__(self, task: SelfSupervisedTask) -> None:
        self.task = task

    def fit_start(self, trainer: Any) -> None:
        loader = trainer.train_loader
        self.task.attach_bank(getattr(loader, "inputs", None), getattr(loader, "targets", None))
