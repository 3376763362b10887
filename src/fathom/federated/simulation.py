"""The in-process simulation: rounds of client sampling, local training and aggregation.

Deterministic and resumable after a kill at any round: client sampling is drawn from
(seed, round), each client's training is seeded by (seed, round, client), and after every round
the global model, the server optimizer, the round, the history and the RNG states go to
``checkpoints/federated.safetensors`` (atomically), so a resumed run ends bitwise as an
uninterrupted one."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fathom.assemble import evaluation_batch_size, make_task
from fathom.config import FathomConfig
from fathom.data.bundle import DataBundle
from fathom.data.loader import make_loader
from fathom.engine import checkpoint_files as ckpt
from fathom.engine.trainer import evaluate
from fathom.errors import ConfigError
from fathom.federated.client import client_seed, train_client, with_train
from fathom.federated.pool import ClientPool
from fathom.federated.server import SERVER_OPTIMIZERS, ServerOptimizer, weighted_average
from fathom.federated.splits import check_split, class_histogram, split_clients

STRATEGIES = ("fedavg", "fedprox")


@dataclass
class FederatedConfig:
    """The federated settings saved in run.json (``federated``)."""

    clients: int = 100
    fraction: float = 0.1
    local_epochs: int = 5
    rounds: int = 300
    split: str = "iid"
    alpha: float = 0.5
    strategy: str = "fedavg"
    mu: float = 0.01
    server: str = "fedavg"  # fedavg, fedavgm (server momentum) or fedadam
    server_lr: float | None = None  # None: 0.01 for fedadam, 1.0 (plain averaging) otherwise
    server_momentum: float = 0.9
    processes: int = 1  # clients trained side by side in spawned workers (one thread each)
    stragglers: float = 0.0  # share of a round's clients that run out of time (FedProx's setup)

    def __post_init__(self) -> None:
        if self.server_lr is None:
            self.server_lr = 0.01 if self.server == "fedadam" else 1.0

    def check(self, examples: int) -> None:
        check_split(self.split, self.clients, self.alpha, examples)
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"federated.fraction must be in (0, 1], got {self.fraction}")
        if not 1 <= self.processes <= 256:
            raise ConfigError(
                f"federated.processes must be between 1 and 256, got {self.processes}"
            )
        if self.rounds < 1 or self.local_epochs < 1:
            raise ConfigError("federated.rounds and federated.local_epochs must be at least 1")
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"federated.strategy: '{self.strategy}' is not one of fedavg, fedprox"
            )
        if self.server not in SERVER_OPTIMIZERS:
            raise ConfigError(
                f"federated.server: '{self.server}' is not one of {SERVER_OPTIMIZERS}"
            )
        if not self.server_lr > 0 or not 0 <= self.server_momentum < 1:
            raise ConfigError(f"federated.server_lr must be > 0 (got {self.server_lr}) and "
                              f"server_momentum in [0, 1) (got {self.server_momentum})")  # fmt: skip
        if self.strategy == "fedprox" and not self.mu > 0:
            raise ConfigError(f"federated.mu must be > 0 for fedprox, got {self.mu}")
        if not 0 <= self.stragglers < 1:
            raise ConfigError(f"federated.stragglers must be in [0, 1), got {self.stragglers}")
        if self.stragglers and self.local_epochs < 2:
            raise ConfigError("federated.stragglers needs local_epochs of at least 2: a straggler "
                              "trains 1 to local_epochs - 1 epochs")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def per_round(self) -> int:
        return max(1, round(self.fraction * self.clients))


def sample_clients(seed: int, round_index: int, clients: int, count: int) -> list[int]:
    """The clients of one round: ``count`` of ``clients``, drawn from (seed, round)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + round_index)
    return sorted(torch.randperm(clients, generator=generator)[:count].tolist())


def round_plan(seed: int, round_index: int, federated: FederatedConfig) -> dict[int, int]:
    """The clients that train in one round and their local epochs, drawn from (seed, round).

    With ``stragglers`` (Li et al. 2020, FedProx's systems heterogeneity), that share of the
    chosen clients manage only 1 to E - 1 epochs, uniformly: FedProx aggregates their partial
    work, FedAvg drops them (its clients must finish E epochs), as in the paper."""
    chosen = sample_clients(seed, round_index, federated.clients, federated.per_round)
    plan = dict.fromkeys(chosen, federated.local_epochs)
    count = round(federated.stragglers * len(chosen))
    if count:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + round_index + 7_919)
        for position in torch.randperm(len(chosen), generator=generator)[:count].tolist():
            epochs = int(torch.randint(1, federated.local_epochs, (1,), generator=generator))
            plan[chosen[position]] = epochs
    if federated.strategy == "fedavg":
        plan = {client: e for client, e in plan.items() if e == federated.local_epochs}
    return plan


class Simulation:
    """A federated run in one process; ``run()`` continues from ``self.round``."""

    def __init__(self, config: FathomConfig, federated: FederatedConfig, bundle: DataBundle,
                 network: nn.Module, run_dir: Path | None = None) -> None:  # fmt: skip
        federated.check(len(bundle.train))
        self.config, self.federated, self.bundle, self.run_dir = config, federated, bundle, run_dir
        self.model = network
        self.worker = copy.deepcopy(network)  # the clients train this copy, one after another
        self.local = with_train(config, epochs=federated.local_epochs)
        self.parts = split_clients(bundle.train.targets, federated.clients, federated.split,
                                   alpha=federated.alpha, seed=config.train.seed)  # fmt: skip
        self.server = ServerOptimizer(network, federated.server, federated.server_lr,
                                      federated.server_momentum)  # fmt: skip
        self.task = make_task(config, bundle.info)
        evaluation = bundle.test if bundle.test is not None else bundle.val
        self.evaluation = evaluation and make_loader(evaluation, evaluation_batch_size(config))
        self.round = 0
        self.history: list[dict[str, Any]] = []
        self.participation = [0] * federated.clients
        self.pool: ClientPool | None = None  # while run() trains with federated.processes > 1

    def client_sizes(self) -> list[int]:
        return [len(part) for part in self.parts]

    def histogram(self) -> list[list[int]]:
        classes = self.bundle.info.num_classes or int(self.bundle.train.targets.max()) + 1
        return class_histogram(self.bundle.train.targets, self.parts, classes)

    def run(self, on_round: Any = None) -> list[dict[str, Any]]:
        """Train the remaining rounds; ``on_round(simulation)`` after each (checkpoint, log)."""
        if self.federated.processes > 1 and self.round < self.federated.rounds:
            self.pool = ClientPool(self.federated.processes, self.worker, self.bundle.train,
                                   self.bundle.info, self.local)  # fmt: skip
        finished = False
        try:
            while self.round < self.federated.rounds:
                self.history.append(self.run_round())
                self.round += 1
                if on_round is not None:
                    on_round(self)
            finished = True
        finally:
            if self.pool is not None:
                self.pool.close(wait=finished)  # stopped by an error: the workers are killed
                self.pool = None
        return self.history

    def run_round(self) -> dict[str, Any]:
        federated, seed = self.federated, self.config.train.seed
        plan = round_plan(seed, self.round, federated)
        mu = federated.mu if federated.strategy == "fedprox" else 0.0
        global_state = {key: value.clone() for key, value in self.model.state_dict().items()}
        for client in plan:
            self.participation[client] += 1
        jobs = [(self.parts[client], client_seed(seed, self.round, client), epochs)
                for client, epochs in plan.items()]  # fmt: skip
        if self.pool is not None:
            results = self.pool.train(global_state, jobs, mu)
        else:
            results = [
                train_client(self.worker, global_state, self.bundle.train.subset(indices),
                             self.bundle.info, self.local, seed=job_seed, mu=mu, epochs=epochs)
                for indices, job_seed, epochs in jobs
            ]  # fmt: skip
        states, sizes, losses = [[result[i] for result in results] for i in range(3)]
        return self.finish_round(plan, states, sizes, losses)

    def finish_round(self, plan: dict[int, int], states: list[dict[str, torch.Tensor]],
                     sizes: list[int], losses: list[float]) -> dict[str, Any]:  # fmt: skip
        """The server's half of a round (also the Flower server's): aggregate, step, evaluate.
        A round whose every client straggled (FedAvg drops them) leaves the model as it was."""
        if states:
            self.server.step(weighted_average(states, sizes))
        record: dict[str, Any] = {
            "round": self.round + 1, "clients": list(plan),
            "train_loss": sum(losses) / len(losses) if losses else None,
        }  # fmt: skip
        if self.federated.stragglers:
            record["local_epochs"] = list(plan.values())
        if self.evaluation is not None:
            scalars, _ = evaluate(self.model, self.task, self.evaluation, torch.device("cpu"))
            record.update({key: float(value) for key, value in scalars.items()})
        return record

    # ------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = ckpt.prefixed("model", self.model.state_dict())
        server_tensors, server_state = ckpt.split_optimizer_state(self.server.state_dict()) \
            if self.server.optimizer is not None else ({}, {})  # fmt: skip
        tensors.update(ckpt.prefixed("server", server_tensors))
        rng_tensors, rng = ckpt.capture_rng()
        tensors.update(ckpt.prefixed("rng", rng_tensors))
        saved = {"kind": "federated", "round": self.round, "history": self.history,
                 "participation": self.participation, "server": server_state, "rng": rng}  # fmt: skip
        return tensors, saved

    def restore(self, tensors: dict[str, torch.Tensor], saved: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt.unprefixed("model", tensors))
        if self.server.optimizer is not None and saved["server"]:
            self.server.load_state_dict(
                ckpt.join_optimizer_state(ckpt.unprefixed("server", tensors), saved["server"])
            )
        self.round, self.history = int(saved["round"]), list(saved["history"])
        self.participation = [int(count) for count in saved["participation"]]
        ckpt.restore_rng(ckpt.unprefixed("rng", tensors), saved["rng"])

    def save(self, path: Path) -> None:
        tensors, saved = self.checkpoint_state()
        ckpt.save_checkpoint(path, tensors, saved)
