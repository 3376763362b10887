"""The execution seam: one process, DDP or FSDP2 behind the same loop (STYLE.md principle 15).

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables;
``current_execution`` joins the process group they describe (gloo on CPU, NCCL on GPUs) and
returns an ``Execution`` that wraps the model, shards the training loader, reduces logged
metrics and says whether this is the main process, the only one that writes.

Sharding keeps the maths of one process: every rank walks the same seeded global batches and
takes its slice of each one, so each example is seen once per epoch by exactly one rank, the last
partial batch is split as one process would take it whole, and each rank's loss is weighted by
its share of the global batch, so that DDP's gradient mean equals the one-process gradient.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from fathom.errors import ConfigError

Batch = tuple[torch.Tensor, torch.Tensor]


def environment_world_size() -> int:
    """The number of processes ``torchrun`` started (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that writes run folders, logs and checkpoints."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


class Execution:
    """How the loop runs: ``world_size`` processes, this one ``rank``, with ``strategy``."""

    def __init__(self, strategy: str = "ddp", rank: int = 0, world_size: int = 1) -> None:
        self.strategy, self.rank, self.world_size = strategy, rank, world_size

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: torch.device) -> torch.device:
        """Each GPU process takes its own device (``LOCAL_RANK``); CPU processes share the CPU."""
        if self.distributed and requested.type == "cuda":
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return requested

    def wrap(self, network: nn.Module, device: torch.device) -> nn.Module:
        """The network the loop calls: DDP, FSDP2 (``fully_shard``) or the module itself."""
        if not self.distributed:
            return network
        if self.strategy == "fsdp":
            from torch.distributed.fsdp import fully_shard

            return fully_shard(network)
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(network, device_ids=ids)

    def shard(self, loader: Any) -> Any:
        """This rank's part of ``loader`` (the loader itself on one process)."""
        return ShardedLoader(loader, self.rank, self.world_size) if self.distributed else loader

    def scale_loss(self, loss: torch.Tensor, loader: Any) -> torch.Tensor:
        """``loss`` weighted by this rank's share of the global batch (exactly 1.0 when even)."""
        weight = getattr(loader, "shard_weight", 1.0)
        return loss if weight == 1.0 else loss * weight

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each value averaged over the ranks (one all-reduce), for the training log."""
        if not self.distributed or not values:
            return values
        stacked = torch.stack([value.detach().float().reshape(()) for value in values.values()])
        dist.all_reduce(stacked)
        return dict(zip(values, (stacked / self.world_size).unbind(), strict=True))

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (a run folder's path, for one)."""
        if not self.distributed:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]


_CURRENT: Execution | None = None


def current_execution(strategy: str = "ddp", device: str = "cpu") -> Execution:
    """The process group ``torchrun`` describes, joined once (gloo on CPU, NCCL on GPUs)."""
    global _CURRENT  # one process group per process, as torch.distributed itself keeps
    world = environment_world_size()
    if _CURRENT is not None and _CURRENT.world_size == world:
        _CURRENT.strategy = strategy
        return _CURRENT
    if world > 1 and not dist.is_initialized():
        uses_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        if uses_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if uses_cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    _CURRENT = Execution(strategy, rank, world)
    return _CURRENT


def check_shardable(examples: int, batch_size: int, world_size: int) -> None:
    """Refuse a split or a batch too small to give every process at least one example."""
    if world_size > examples:
        raise ConfigError(
            f"{world_size} processes but only {examples} training examples: use at most "
            f"{examples} processes (--nproc)"
        )
    if world_size > batch_size:
        raise ConfigError(
            f"data.batch_size={batch_size} is the global batch and must be at least the "
            f"number of processes ({world_size})"
        )


class ShardedLoader:
    """Rank ``rank``'s slice of every global batch of a resumable loader.

    The wrapped loader (seeded by (seed, epoch), augmenting with (seed, epoch, batch)) yields the
    batches one process would train on; each rank keeps its contiguous slice, so the shards of
    an epoch are disjoint and complete. Position and state are the wrapped loader's, so a
    checkpoint resumes with any number of processes that the global batch allows."""

    def __init__(self, loader: Any, rank: int, world_size: int) -> None:
        check_shardable(loader.count, loader.batch_size, world_size)
        self.loader, self.rank, self.world_size = loader, rank, world_size
        self.shard_weight = 1.0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for inputs, targets in self.loader:
            yield self.slice(inputs, targets)

    def slice(self, inputs: torch.Tensor, targets: torch.Tensor) -> Batch:
        """This rank's part of a global batch; a rank left without examples (a last batch
        smaller than the world) trains on one example with weight 0, so collectives still match."""
        total = len(inputs)
        bounds = [total * rank // self.world_size for rank in range(self.world_size + 1)]
        start, stop = bounds[self.rank], bounds[self.rank + 1]
        if stop == start:
            self.shard_weight = 0.0
            return inputs[:1], targets[:1]
        self.shard_weight = self.world_size * (stop - start) / total
        return inputs[start:stop], targets[start:stop]

    @property
    def position(self) -> int:
        return self.loader.position

    @property
    def inputs(self) -> torch.Tensor | None:
        return getattr(self.loader, "inputs", None)

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)
