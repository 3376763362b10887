"""Clients of a round trained side by side in worker processes (``federated.processes``).

Each worker is spawned once per run (not forked: forking a process whose OpenMP pool already
ran can hang the child) and holds its own copy of the network, the training split and the local
config; a round sends each worker the global weights and a client's example indices, and gets
back the trained weights. A worker trains on one thread, and every client's training is seeded
by (seed, round, client), so the weights equal those of the one-process simulation run with
``train.threads=1``, bitwise, in the same client order. Tensors travel through shared memory
between Fathom's own processes (nothing a user gives is unpickled)."""

from __future__ import annotations

import copy
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch
import torch.multiprocessing as mp
from torch import nn

from fathom.config import FathomConfig
from fathom.data.bundle import DataInfo, Split
from fathom.federated.client import State, train_client, with_train

_WORKER: dict[str, Any] = {}  # this worker process's network, split, info and config


def _start_worker(network: nn.Module, train: Split, info: DataInfo, config: FathomConfig) -> None:
    torch.set_num_threads(1)
    # The network arrives in shared memory, the same storage in every worker: train a copy.
    _WORKER.update(network=copy.deepcopy(network), train=train, info=info, config=config)


def _train(
    global_state: State, indices: torch.Tensor, seed: int, mu: float, epochs: int
) -> tuple[State, int, float]:
    examples = _WORKER["train"].subset(indices)
    return train_client(_WORKER["network"], global_state, examples, _WORKER["info"],
                        _WORKER["config"], seed=seed, mu=mu, epochs=epochs)  # fmt: skip


class ClientPool:
    """``processes`` spawned workers that train the clients of each round in parallel."""

    def __init__(
        self, processes: int, network: nn.Module, train: Split, info: DataInfo,
        config: FathomConfig,
    ) -> None:  # fmt: skip
        local = with_train(config, threads=1)
        # An executor, not multiprocessing.Pool: a worker that dies fails the round at once
        # (BrokenProcessPool) instead of leaving the round waiting for it forever.
        self.pool = ProcessPoolExecutor(
            processes, mp_context=mp.get_context("spawn"), initializer=_start_worker,
            initargs=(network, train, info, local),
        )  # fmt: skip

    def train(
        self, global_state: State, jobs: list[tuple[torch.Tensor, int, int]], mu: float
    ) -> list[tuple[State, int, float]]:
        """Each (indices, seed, epochs) job trained from ``global_state``; results in the jobs'
        order."""
        futures = [self.pool.submit(_train, global_state, indices, seed, mu, epochs)
                   for indices, seed, epochs in jobs]  # fmt: skip
        return [future.result() for future in futures]

    def close(self, wait: bool = True) -> None:
        """Let the workers finish and exit (``wait``), else stop them at once."""
        if not wait:
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.kill()  # the executor has no terminate(); its workers are ours to stop
        self.pool.shutdown(wait=wait, cancel_futures=True)
