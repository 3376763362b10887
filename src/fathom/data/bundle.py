"""What every dataset returns: splits of tensors plus what a model and a report need to know."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from fathom.errors import DataError


@runtime_checkable
class LazySplit(Protocol):
    """A split too large for memory: examples are decoded from disk on demand (see StreamingLoader).

    ``normalization`` (``{"mean": [...], "std": [...]}`` per channel, or None) is set by
    ``finalize`` from training statistics and applied to each example as it is decoded.
    """

    targets: torch.Tensor
    normalization: dict[str, list[float]] | None

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def subset(self, indices: torch.Tensor) -> LazySplit: ...


@dataclass
class Split:
    """Examples held in memory: ``inputs[i]`` goes with ``targets[i]``.

    Where each example came from survives splitting and ``data.limit`` (``subset`` keeps them):
    ``rows[i]`` is its row in the dataset's source, for a CSV the 1-based line number in the file
    (``info.extra["path"]``), else its index in the split the dataset returned (``finalize``
    numbers those); ``files[i]`` is its file for datasets read from files (image folders).
    ``groups[i]`` (optional) is its sensitive group (``data.sensitive``), kept through splits but
    not fed to the model.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    rows: torch.Tensor | None = None
    files: list[str] | None = None
    groups: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.targets):
            raise DataError(f"{len(self.inputs)} inputs but {len(self.targets)} targets")
        for name, values in (("rows", self.rows), ("files", self.files), ("groups", self.groups)):
            if values is not None and len(values) != len(self.targets):
                raise DataError(f"{len(values)} {name} but {len(self.targets)} examples")

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, indices: torch.Tensor) -> Split:
        if indices.dtype == torch.bool:
            indices = indices.nonzero().flatten()
        rows = self.rows[indices] if self.rows is not None else None
        files = [self.files[int(index)] for index in indices] if self.files is not None else None
        groups = self.groups[indices] if self.groups is not None else None
        return Split(self.inputs[indices], self.targets[indices], rows, files, groups)


@dataclass
class DataInfo:
    """Facts about a dataset that models, tasks, predictions and reports rely on."""

    name: str
    task: str  # "classification" or "regression"
    input_shape: tuple[int, ...]  # one example, e.g. (1, 28, 28) or (14,)
    num_classes: int | None = None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    target_name: str | None = None
    normalization: dict[str, list[float]] | None = None  # {"mean": [...], "std": [...]}
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. CSV category encodings, image size

    @property
    def output_size(self) -> int:
        if self.task == "classification":
            return int(self.num_classes or 0)
        return int(self.extra.get("target_size", 1))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "feature_names": self.feature_names,
            "target_name": self.target_name,
            "normalization": self.normalization,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> DataInfo:
        return cls(**{**value, "input_shape": tuple(value["input_shape"])})


@dataclass
class DataBundle:
    """A dataset ready to train on: train/val/test splits and its ``DataInfo``."""

    info: DataInfo
    train: Split | LazySplit
    val: Split | LazySplit | None = None
    test: Split | LazySplit | None = None

    def splits(self) -> dict[str, Split | LazySplit]:
        named = {"train": self.train, "val": self.val, "test": self.test}
        return {name: split for name, split in named.items() if split is not None}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(split)}" for name, split in self.splits().items())
        return f"DataBundle({self.info.name}: {sizes}, input_shape={self.info.input_shape})"


def check_labels(targets: torch.Tensor, num_classes: int, where: str) -> None:
    """Raise a DataError naming the first label outside ``0..num_classes-1``."""
    bad = ((targets < 0) | (targets >= num_classes)).nonzero()
    if len(bad):
        index = int(bad[0, 0])
        raise DataError(
            f"{where}: label {int(targets[index])} at row {index} is out of range 0..{num_classes - 1}"
        )
