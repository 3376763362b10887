"""Rows of one split that copy rows of another (train/test leakage): fingerprints of each row,
confirmed by exact comparison, and the table columns that look like row ids.

Used by ``data.dedupe`` (drop the evaluation rows that copy a training row) and by the doctor's
leakage check. Nothing here draws from the global random generators.
"""

from __future__ import annotations

from typing import Any

import torch

from fathom.data.bundle import DataBundle, Split
from fathom.errors import ConfigError, DataError

HASH_LIMIT = 200_000  # rows of a split above which it is not searched (memory: one key a row)


def row_keys(rows: torch.Tensor) -> torch.Tensor:
    """One number per row: its dot product with a fixed random vector (a fast fingerprint; equal
    rows get equal or nearly equal keys, so callers confirm matches by comparing rows)."""
    generator = torch.Generator().manual_seed(20240601)  # private: global RNGs untouched
    direction = torch.randn(rows.shape[1], generator=generator).to(rows.device)
    # an elementwise product summed per row: the same row gives the same key in any chunk
    keys = [(chunk.float() * direction).sum(dim=1) for chunk in rows.split(4096)]
    return torch.cat(keys).double().cpu()


def _rows(split: Any, drop: list[int] | None = None) -> torch.Tensor | None:
    if not isinstance(split, Split) or len(split) > HASH_LIMIT or len(split) == 0:
        return None
    rows = split.inputs.reshape(len(split), -1)
    if drop:
        keep = [column for column in range(rows.shape[1]) if column not in drop]
        rows = rows[:, keep]
    return rows if rows.shape[1] else None


def _copies(
    rows: torch.Tensor, keys: torch.Tensor, train_rows: torch.Tensor, train_keys: torch.Tensor
) -> list[int]:
    """Indices of ``rows`` that equal some training row: near keys first, then exact checks."""
    order = train_keys.argsort()
    ordered = train_keys[order]
    tolerance = 1e-6 * (keys.abs() + 1)
    upper = torch.searchsorted(ordered, keys).clamp(max=len(ordered) - 1)
    lower = (upper - 1).clamp(min=0)
    found = torch.zeros(len(rows), dtype=torch.bool)
    for neighbour in (lower, upper):
        near = ((ordered[neighbour] - keys).abs() <= tolerance) & ~found
        # compared in blocks, all at once: a Python loop over the candidates cost 0.5 s on the
        # Adult table with 13,000 copies (the doctor then skipped the check as over budget)
        for block in near.nonzero().flatten().split(4096):
            same = (rows[block] == train_rows[order[neighbour[block]]]).all(dim=1).cpu()
            found[block[same]] = True
    return found.nonzero().flatten().tolist()


def id_columns(bundle: DataBundle) -> list[int]:
    """Columns of a table that look like row ids: integers (before normalisation), different in
    every training row. Two copies of a row with different ids are still copies."""
    train = bundle.train
    if not isinstance(train, Split) or train.inputs.dim() != 2 or len(train) < 20:
        return []
    inputs = train.inputs.cpu()
    if not inputs.is_floating_point():  # token ids of texts are not a table's columns
        return []
    width = inputs.shape[1]
    mean, std = torch.zeros(width, dtype=torch.float64), torch.ones(width, dtype=torch.float64)
    statistics = bundle.info.normalization or {}
    if statistics.get("mean") and len(statistics["mean"]) == width:
        mean = torch.tensor(statistics["mean"], dtype=torch.float64)
        std = torch.tensor(statistics["std"], dtype=torch.float64)
    # float32 standardised values give the ids back only to ~1e-7 of the column's size
    largest = inputs.abs().amax(dim=0).double() * std + mean.abs()
    tolerance = 1e-3 + 1e-6 * largest

    def looks_like_ids(values: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        raw = values.double() * std[columns] + mean[columns]
        rounded = raw.round()
        integral = ((raw - rounded).abs() < tolerance[columns]).all(dim=0)
        ordered = rounded.sort(dim=0).values
        return integral & (ordered[1:] != ordered[:-1]).all(dim=0)

    # The first rows rule out most columns (one-hot, small counts) for a fraction of the cost
    # of a pass in float64 over every row (0.2 s on Adult's 47,000 x 109).
    every = torch.arange(width)
    candidates = every[looks_like_ids(inputs[:256], every)]
    if not len(candidates):
        return []
    found = looks_like_ids(inputs[:, candidates], candidates)
    return candidates[found].tolist()


def copies_of_training_rows(
    bundle: DataBundle, drop: list[int] | None = None
) -> dict[str, list[int] | None]:
    """For the validation and test splits, the positions of their rows that equal a training
    row (``drop``: columns left out); None for a split that is absent or cannot be searched
    (lazy, empty, or above ``HASH_LIMIT`` rows). The training rows are fingerprinted once."""
    splits = {name: _rows(getattr(bundle, name), drop) for name in ("train", "val", "test")}
    width = max((rows.shape[1] for rows in splits.values() if rows is not None), default=0)
    # texts are token ids padded with 0 to each split's longest: compare at one width
    splits = {name: _padded(rows, width) for name, rows in splits.items()}
    train_rows = splits.pop("train")
    if train_rows is None:
        return dict.fromkeys(splits)
    train_keys = row_keys(train_rows)
    return {
        name: None if rows is None else _copies(rows, row_keys(rows), train_rows, train_keys)
        for name, rows in splits.items()
    }


def _padded(rows: torch.Tensor | None, width: int) -> torch.Tensor | None:
    if rows is None or rows.shape[1] == width:
        return rows
    return torch.nn.functional.pad(rows, (0, width - rows.shape[1]))


def drop_copies(bundle: DataBundle) -> tuple[DataBundle, dict[str, int]]:
    """``bundle`` without the validation and test rows that copy a training row, id-like columns
    left out (``data.dedupe``); how many rows each split lost."""
    found = copies_of_training_rows(bundle, id_columns(bundle) or None)
    kept: dict[str, Any] = {}
    dropped: dict[str, int] = {}
    for name, copies in found.items():
        split = kept[name] = getattr(bundle, name)
        if split is None:
            continue
        if copies is None:
            raise ConfigError(
                f"data.dedupe: the {name} split cannot be searched for copies (a lazily read "
                f"dataset, or over {HASH_LIMIT:,} rows)"
            )
        if len(copies) == len(split):
            raise DataError(f"data.dedupe: every {name} row is a copy of a training row")
        keep = torch.ones(len(split), dtype=torch.bool)
        keep[copies] = False
        kept[name], dropped[name] = split.subset(keep.nonzero().flatten()), len(copies)
    return DataBundle(bundle.info, bundle.train, kept["val"], kept["test"]), dropped
