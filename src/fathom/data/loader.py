"""Loaders whose position can be saved and restored mid-epoch.

``TensorLoader`` keeps a dataset as tensors on the training device and batches by index: no
``DataLoader`` workers, no collation, no host round trips. ``StreamingLoader`` reads a ``LazySplit``
from disk through a ``DataLoader``. Both shuffle with a permutation derived from (seed, epoch) and
augment with a generator derived from (seed, epoch, batch), so a saved (epoch, position) is all it
takes to resume exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from fathom.data.bundle import LazySplit, Split

Batch = tuple[torch.Tensor, torch.Tensor]
Transform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], Batch]


class _ResumableBatches:
    """Epoch/position bookkeeping shared by both loaders."""

    def __init__(
        self,
        count: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        transform: Transform | None,
        device: torch.device,
    ) -> None:
        self.count = count
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.transform = transform
        self.device = torch.device(device)
        # A final batch of one example breaks batch norm and adds noise: drop it when shuffling.
        self.drop_last = drop_last or (shuffle and count % batch_size == 1 and count > 1)
        self.epoch = 0
        self.position = 0

    def __len__(self) -> int:
        if self.drop_last:
            return self.count // self.batch_size
        return -(-self.count // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.count)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.count, generator=generator)

    def batch_generator(self, epoch: int, batch: int) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        generator.manual_seed((self.seed * 1_000_003 + epoch) * 100_003 + batch)
        return generator

    def batch_indices(self) -> Iterator[tuple[int, torch.Tensor]]:
        order = self.order(self.epoch)
        for batch in range(self.position, len(self)):
            yield batch, order[batch * self.batch_size : (batch + 1) * self.batch_size]

    def finish(self, inputs: torch.Tensor, targets: torch.Tensor, batch: int) -> Batch:
        if self.transform is not None:
            inputs, targets = self.transform(
                inputs, targets, self.batch_generator(self.epoch, batch)
            )
        self.position = batch + 1
        return inputs, targets

    def end_epoch(self) -> None:
        self.epoch += 1
        self.position = 0

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.seed = int(state.get("seed", self.seed))


class TensorLoader(_ResumableBatches):
    """Batches in-memory tensors by index on the training device."""

    def __init__(
        self,
        split: Split,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
        transform: Transform | None = None,
        channels_last: bool = False,
    ) -> None:
        device = torch.device(device)
        super().__init__(
            len(split),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            transform=transform,
            device=device,
        )
        inputs = split.inputs.to(device, non_blocking=True)
        if channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        self.inputs = inputs
        self.targets = split.targets.to(device, non_blocking=True)

    def __iter__(self) -> Iterator[Batch]:
        for batch, indices in self.batch_indices():
            if not self.shuffle:
                start = int(indices[0]) if len(indices) else 0
                inputs = self.inputs[start : start + len(indices)]
                targets = self.targets[start : start + len(indices)]
            else:
                indices = indices.to(self.device, non_blocking=True)
                inputs = self.inputs.index_select(0, indices)  # ~2.5x cheaper than inputs[indices]
                targets = self.targets.index_select(0, indices)
            yield self.finish(inputs, targets, batch)
        self.end_epoch()


class StreamingLoader(_ResumableBatches):
    """Decodes a ``LazySplit`` from disk with ``DataLoader`` workers, resumable mid-epoch."""

    def __init__(
        self,
        split: LazySplit,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
        drop_last: bool = False,
        transform: Transform | None = None,
        workers: int = 2,
    ) -> None:
        super().__init__(
            len(split),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            transform=transform,
            device=torch.device(device),
        )
        self.split = split
        self.workers = workers

    def __iter__(self) -> Iterator[Batch]:
        planned = list(self.batch_indices())
        loader = torch.utils.data.DataLoader(
            self.split,
            batch_sampler=[indices.tolist() for _, indices in planned],
            num_workers=self.workers,
            persistent_workers=False,
        )
        for (batch, _), (inputs, targets) in zip(planned, loader, strict=True):
            inputs = inputs.to(self.device, non_blocking=True)
            yield self.finish(inputs, targets.to(self.device, non_blocking=True), batch)
        self.end_epoch()


def make_loader(
    split: Split | LazySplit,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    transform: Transform | None = None,
    channels_last: bool = False,
) -> TensorLoader | StreamingLoader:
    """A ``TensorLoader`` for in-memory splits, a ``StreamingLoader`` for lazy ones."""
    if isinstance(split, Split):
        return TensorLoader(
            split,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            device=device,
            transform=transform,
            channels_last=channels_last,
        )
    return StreamingLoader(
        split, batch_size, shuffle=shuffle, seed=seed, device=device, transform=transform
    )
