"""Which parameter groups train when: feature extraction, fine_tune, gradual unfreezing.

Parameter groups come from the model contract (stem first, head last). ``unfreeze_epochs``
turns ``transfer.*`` into the epoch from which each group trains (None: never), and
``GroupFreezing`` applies it at every epoch start, so a run resumed mid-epoch freezes exactly
what the interrupted run froze. The optimizer holds every parameter from the start (a frozen
one has no gradient, so the optimizer skips it and its weight decay), and batch-norm layers
of frozen groups keep their running statistics (``transfer.bn_stats``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from fathom.config import TransferConfig
from fathom.engine.callbacks import Callback
from fathom.errors import ConfigError
from fathom.nn.classifier import parameter_groups

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer


def unfreeze_epochs(config: TransferConfig, groups: int) -> list[int | None]:
    """The epoch from which each of ``groups`` parameter groups trains (None: never)."""
    head = groups - 1
    if config.mode == "full":
        starts: list[int | None] = [0] * groups
    elif config.mode == "features":
        starts = [None] * head + [0]
    elif config.mode == "fine_tune":
        starts = [config.freeze_epochs] * head + [0]
    else:  # gradual: the head first, then one group more every unfreeze_every epochs
        starts = [(head - index) * config.unfreeze_every for index in range(groups)]
    for index in checked_indices(config.frozen_groups, groups):
        starts[index] = None
    return starts


def checked_indices(indices: list[int], groups: int) -> list[int]:
    """Group indices (negative ones count from the head) as positions; one line if unknown."""
    checked = []
    for index in indices:
        if not -groups <= index < groups:
            raise ConfigError(
                f"transfer.frozen_groups: no parameter group {index}; this model has {groups} "
                f"(0 = stem .. {groups - 1} = head, or -1 = head)"
            )
        checked.append(index % groups)
    return checked


class GroupFreezing(Callback):
    """Freezes the parameter groups that do not train yet and unfreezes them on schedule."""

    order = -100  # before every other callback sees the epoch

    def __init__(self, starts: list[int | None], bn_stats: str = "auto") -> None:
        self.starts = starts
        self.bn_stats = bn_stats
        self.groups: list[list[nn.Parameter]] = []
        self.batch_norms: list[tuple[nn.Module, int | None]] = []
        self.trainable: list[int] = []

    def trainable_at(self, epoch: int) -> list[int]:
        return [i for i, start in enumerate(self.starts) if start is not None and epoch >= start]

    def fit_start(self, trainer: Trainer) -> None:
        self.attach(trainer.model)
        self.apply(trainer.state.epoch)

    def attach(self, model: nn.Module) -> None:
        """Find the model's parameter groups and batch-norm layers (on its device)."""
        self.groups = parameter_groups(model)
        if len(self.starts) != len(self.groups):
            raise ConfigError(f"{len(self.starts)} unfreeze epochs for {len(self.groups)} groups")
        self.batch_norms = batch_norm_groups(model, self.groups)

    def epoch_start(self, trainer: Trainer) -> None:
        self.apply(trainer.state.epoch)

    def apply(self, epoch: int) -> None:
        self.trainable = self.trainable_at(epoch)
        for index, group in enumerate(self.groups):
            for parameter in group:
                parameter.requires_grad_(index in self.trainable)
                if index not in self.trainable:
                    parameter.grad = None

    def batch_start(self, trainer: Trainer) -> None:
        """After the trainer's ``model.train()``: fixed statistics where they are frozen."""
        if self.bn_stats == "update":
            return
        for module, index in self.batch_norms:
            if self.bn_stats == "frozen" or (index is not None and index not in self.trainable):
                module.eval()

    def state_dict(self) -> dict[str, Any]:
        return {"trainable": list(self.trainable)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainable = [int(index) for index in state.get("trainable", [])]


def batch_norm_groups(
    model: nn.Module, groups: list[list[nn.Parameter]]
) -> list[tuple[nn.Module, int | None]]:
    """Every batch-norm layer with the index of the group holding its weight (None without an
    affine weight: such a layer keeps fixed statistics only with ``bn_stats=frozen``)."""
    where = {id(parameter): index for index, group in enumerate(groups) for parameter in group}
    found = []
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            weight = getattr(module, "weight", None)
            found.append((module, where.get(id(weight)) if weight is not None else None))
    return found


def freezing_callbacks(config: TransferConfig, model: nn.Module) -> list[Callback]:
    """The callback for ``transfer.*`` (none when everything trains from the start)."""
    groups = len(parameter_groups(model))
    starts = unfreeze_epochs(config, groups)
    if all(start == 0 for start in starts) and config.bn_stats != "frozen":
        return []
    return [GroupFreezing(starts, config.bn_stats)]
