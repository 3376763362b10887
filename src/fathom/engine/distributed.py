"""The execution seam: one process, DDP or FSDP2 behind the same loop (STYLE.md principle 15).

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables;
``current_execution`` joins the process group they describe (gloo on CPU, NCCL on GPUs) and
returns an ``Execution`` that wraps the model, shards the training loader, reduces logged
metrics and says whether this is the main process, the only one that writes.

Sharding keeps the maths of one process: every rank walks the same seeded global batches and
takes its slice of each one, so each example is seen once per epoch by exactly one rank, the last
partial batch is split as one process would take it whole, and each rank's loss is weighted by
its share of the global batch, so that DDP's gradient mean equals the one-process gradient.

Under FSDP2 each rank holds a shard of every parameter (a DTensor); the ``*_state`` methods gather
full model and optimizer states for checkpoints (a collective: every rank calls them, rank 0 gets
the tensors) and scatter full ones back on resume, in the one-process checkpoint format.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import os
import sys
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn

from fathom.errors import ConfigError

if TYPE_CHECKING:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    from fathom.config import FathomConfig

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
        # each sharded module's unsharded twin on the meta device, to hold its gathered weights
        self._skeletons: weakref.WeakKeyDictionary[nn.Module, nn.Module] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shards_state(self) -> bool:
        """Whether each rank holds only a shard of the weights (FSDP over several processes):
        reading or writing the full state is then a collective that every rank must join."""
        return self.distributed and self.strategy == "fsdp"

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

            self._skeletons[network] = meta_copy(network)
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

    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """``model``'s full ``state_dict``; sharded, every rank calls it and rank 0 gets it."""
        if not self.shards_state:
            return model.state_dict()
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(model, options=full_state_options(gather=True))

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """``optimizer.state_dict()`` with full tensors, parameters numbered as one process
        numbers them; sharded, every rank calls it and the others get an empty state."""
        if not self.shards_state:
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state = get_optimizer_state_dict(model, optimizer, options=full_state_options(gather=True))
        if not state:  # not rank 0: it took part in the gather and keeps nothing
            return {"state": {}, "param_groups": []}
        return renumbered(state, parameter_names(model, optimizer))

    def load_model_state(self, model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
        """Load a full ``state_dict`` (held by every rank) into ``model`` or its shards."""
        if not self.shards_state:
            model.load_state_dict(tensors)
            return
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        # Each tensor is scattered in turn, so every rank must walk them in the same order; a
        # checkpoint's come back in safetensors' hash-map order, which differs between processes.
        ordered = dict(sorted(tensors.items()))
        set_model_state_dict(model, ordered, options=full_state_options(gather=False))

    def load_optimizer_state(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
    ) -> None:
        """Load a full ``optimizer_state`` (held by every rank) into ``optimizer`` or its shards."""
        if not self.shards_state:
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        names = parameter_names(model, optimizer)
        ordered = {  # the same order on every rank, as for the model
            "state": {
                key: dict(sorted(values.items())) for key, values in sorted(state["state"].items())
            },
            "param_groups": state["param_groups"],
        }
        by_name = renumbered(ordered, {index: name for name, index in names.items()})
        # The saved hyperparameters go into the live groups first, as ``load_state_dict`` puts
        # them: torch's loader fails (KeyError) on a saved key that a live group lacks, such as
        # a schedule's ``initial_lr`` before the first step.
        for group, saved in zip(optimizer.param_groups, state["param_groups"], strict=True):
            group.update({key: value for key, value in saved.items() if key != "params"})
        set_optimizer_state_dict(
            model, optimizer, by_name, options=full_state_options(gather=False)
        )

    def gathered(self, model: nn.Module) -> nn.Module:
        """The module the main process saves and evaluates: ``model`` itself unless this
        execution sharded it. Sharded, every rank calls it (a gather); rank 0 gets a plain
        module with the full weights and buffers, the others ``model``."""
        if not self.shards_state or model not in self._skeletons:
            return model
        full = self.model_state(model)
        if not self.is_main:
            return model
        device = next(model.parameters()).device  # where this rank's shards are
        plain = copy.deepcopy(self._skeletons[model]).to_empty(device=device)
        for name, buffer in model.named_buffers():  # plain tensors under FSDP, kept per rank
            plain.get_buffer(name).copy_(buffer)
        plain.load_state_dict(full)
        return plain.train(model.training)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (a run folder's path, for one)."""
        if not self.distributed:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]


def meta_copy(network: nn.Module) -> nn.Module:
    """A deep copy of ``network`` whose parameters and buffers are on the meta device (no
    memory): the same classes, attributes and tied weights, ready for ``to_empty``."""
    memo: dict[int, Any] = {}
    for parameter in network.parameters():
        memo[id(parameter)] = nn.Parameter(
            torch.empty_like(parameter, device="meta"), parameter.requires_grad
        )
    for buffer in network.buffers():
        memo[id(buffer)] = torch.empty_like(buffer, device="meta")
    return copy.deepcopy(network, memo)


def full_state_options(gather: bool) -> StateDictOptions:
    """``StateDictOptions`` for full (unsharded) states: gathered onto rank 0's CPU, or loaded
    from a full state that every rank holds (so no broadcast from rank 0 is needed)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=gather)


def parameter_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Each parameter's name in ``model``, to the number ``optimizer.state_dict()`` gives it."""
    names = {parameter: name for name, parameter in model.named_parameters()}
    ordered = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    return {names[parameter]: index for index, parameter in enumerate(ordered)}


def renumbered(state: dict[str, Any], keys: dict[Any, Any]) -> dict[str, Any]:
    """An optimizer state with its parameters' keys (names or numbers) mapped through ``keys``."""
    return {
        "state": {keys[key]: values for key, values in state["state"].items()},
        "param_groups": [
            {**group, "params": [keys[key] for key in group["params"]]}
            for group in state["param_groups"]
        ],
    }


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
        atexit.register(leave_process_group)
    rank = dist.get_rank() if world > 1 else 0
    _CURRENT = Execution(strategy, rank, world)
    return _CURRENT


def leave_process_group() -> None:
    """Destroy the process group while the interpreter is still whole (an ``atexit`` hook, for
    ``fathom.fit`` in a user's torchrun script): left to interpreter teardown, gloo's threads can
    abort a finished process ("terminate called without an active exception", SIGABRT;
    pytorch/pytorch#190489)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def end_worker_process(status: int) -> None:
    """End a ``torchrun -m fathom`` worker that joined a process group with ``status`` and no
    interpreter teardown. Destroying the group at exit was not enough: DDP and FSDP keep their
    own references to it, so its gloo threads still died with the interpreter and aborted a
    worker whose run had completed (seen twice under load: a resumed FSDP run in CI, a two-node
    run here). Every collective has returned by now; streams are flushed, files were written
    atomically, so nothing is lost by skipping the teardown."""
    if _CURRENT is None or _CURRENT.world_size <= 1:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def check_processes(config: FathomConfig, world_size: int) -> None:
    """What training in ``world_size`` processes refuses, checked alike by ``--nproc`` before
    torchrun starts any process and by every worker: a global batch smaller than the processes,
    EMA under FSDP (torch refuses to deepcopy a sharded module), ``optim.lr=auto``."""
    if world_size <= 1:
        return
    check_shardable(world_size, config.data.batch_size, world_size)  # examples: known later
    if config.train.strategy == "fsdp" and config.train.ema_decay:
        raise ConfigError("train.ema_decay needs train.strategy=ddp: FSDP cannot copy the model")
    if config.optim.lr == "auto":
        raise ConfigError("optim.lr=auto needs one process: run 'fathom lr-find' first")


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
