"""One client's local training: the ordinary ``Trainer`` and task on the client's own examples.

Both the in-process simulation and the Flower ClientApp call ``train_client``, so a client trains
the same way however it is run (one code path). FedProx's proximal term is a callback that adds
the term's gradient mu * (w - w_global) after each backward pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from fathom.assemble import build_trainer, seed_everything
from fathom.config import FathomConfig
from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.engine.callbacks import Callback

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer

State = dict[str, torch.Tensor]


class ProximalTerm(Callback):
    """FedProx (Li et al. 2020): the gradient of mu/2 * ||w - w_global||^2 added to each step's."""

    def __init__(self, mu: float, reference: list[torch.Tensor]) -> None:
        self.mu, self.reference = mu, reference

    def after_backward(self, trainer: Trainer) -> None:
        for parameter, anchor in zip(trainer.model.parameters(), self.reference, strict=True):
            if parameter.grad is not None:
                parameter.grad.add_(parameter.detach() - anchor, alpha=self.mu)


def client_seed(seed: int, round_index: int, client: int) -> int:
    """The seed of one client's training in one round: its shuffling, dropout and augmentation."""
    return (seed * 1_000_003 + round_index * 10_007 + client) % (2**31)


def with_train(config: FathomConfig, **settings: object) -> FathomConfig:
    """``config`` with ``train`` settings replaced: a client's local epochs E (or a straggler's
    fewer), a worker's one thread, a client's seed."""
    return config.model_copy(update={"train": config.train.model_copy(update=settings)})


def local_config(config: FathomConfig, seed: int) -> FathomConfig:
    """The run's config for a client's local epochs: no checkpoints, diagnostics or progress,
    and no weight EMA (a client sends its trained weights, so an average would go unused)."""
    local = with_train(config, seed=seed, diagnostics=False, early_stopping=None, max_steps=None,
                       max_seconds=None, ema_decay=None)  # fmt: skip
    return local.model_copy(update={"run": config.run.model_copy(update={"progress": "none"})})


def train_client(
    network: nn.Module,
    global_state: State,
    examples: Split,
    info: DataInfo,
    config: FathomConfig,
    *,
    seed: int,
    mu: float = 0.0,
    epochs: int | None = None,
) -> tuple[State, int, float]:
    """Train ``network`` from ``global_state`` on ``examples`` for ``epochs`` (default
    ``config.train.epochs``): (the new weights, the number of examples, the last logged
    training loss)."""
    network.load_state_dict(global_state)
    seed_everything(seed)
    callbacks: list[Callback] = []
    if mu > 0:
        callbacks.append(ProximalTerm(mu, [p.detach().clone() for p in network.parameters()]))
    config = config if epochs is None else with_train(config, epochs=epochs)
    trainer = build_trainer(local_config(config, seed), network, DataBundle(info, examples), None,
                            callbacks)  # fmt: skip
    trainer.fit()
    losses = [record["loss"] for record in trainer.log.records if "loss" in record]
    state = {name: value.detach().clone() for name, value in network.state_dict().items()}
    return state, len(examples), float(losses[-1]) if losses else float("nan")
