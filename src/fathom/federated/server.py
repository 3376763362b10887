"""The server's side of a round: FedAvg's weighted mean, then FedAvg, FedAvgM or FedAdam.

FedAvgM and FedAdam (Reddi et al. 2021) treat global - mean as a pseudo-gradient and hand it to
``torch.optim.SGD`` (momentum) or ``torch.optim.Adam``: PyTorch's optimizers, not new ones."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

State = dict[str, torch.Tensor]
SERVER_OPTIMIZERS = ("fedavg", "fedavgm", "fedadam")


def weighted_average(states: list[State], weights: list[int]) -> State:
    """Each floating tensor averaged with weights proportional to the clients' example counts
    (in float64, then cast back); integer buffers (batch-norm counters) are the first client's."""
    total = float(sum(weights))
    averaged: State = {}
    for name, first in states[0].items():
        if not first.is_floating_point():
            averaged[name] = first.clone()
            continue
        mean = sum(
            state[name].double() * (w / total) for state, w in zip(states, weights, strict=True)
        )
        averaged[name] = mean.to(first.dtype)  # type: ignore[union-attr]
    return averaged


class ServerOptimizer:
    """Moves the global model toward the clients' mean: at once (FedAvg), or as a step of SGD with
    momentum (FedAvgM) or Adam (FedAdam) on the pseudo-gradient global - mean."""

    def __init__(self, model: nn.Module, kind: str = "fedavg", lr: float = 1.0,
                 momentum: float = 0.9) -> None:  # fmt: skip
        self.model, self.kind = model, kind
        parameters = list(model.parameters())
        self.optimizer: torch.optim.Optimizer | None = None
        if kind == "fedavgm":
            self.optimizer = torch.optim.SGD(parameters, lr=lr, momentum=momentum)
        elif kind == "fedadam":
            self.optimizer = torch.optim.Adam(parameters, lr=lr, betas=(0.9, 0.99), eps=1e-3)

    @torch.no_grad()
    def step(self, mean: State) -> None:
        if self.optimizer is None:
            self.model.load_state_dict(mean)
            return
        named = dict(self.model.named_parameters())
        for name, parameter in named.items():
            parameter.grad = parameter.detach() - mean[name]
        with torch.enable_grad():
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        buffers = {name: mean[name] for name, _ in self.model.named_buffers() if name in mean}
        self.model.load_state_dict({**self.model.state_dict(), **buffers})

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict() if self.optimizer is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.optimizer is not None and state:
            self.optimizer.load_state_dict(state)
