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


def row_keys(split: Any, drop: list[int] | None = None) -> torch.Tensor | None:
    """One number per row: its dot product with a fixed random vector (a fast fingerprint; equal
    rows get equal or nearly equal keys, so callers confirm matches by comparing rows).
    ``drop``: columns of a table left out (id-like columns)."""
    rows = _rows(split, drop)
    if rows is None:
        return None
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
    copies = []
    for neighbour in (lower, upper):
        near = (ordered[neighbour] - keys).abs() <= tolerance
        for index in near.nonzero().flatten().tolist():
            if index not in copies and torch.equal(
                rows[index], train_rows[order[neighbour[index]]]
            ):
                copies.append(index)
    return sorted(copies)


def id_columns(bundle: DataBundle) -> list[int]:
    """Columns of a table that look like row ids: integers (before normalisation), different in
    every training row. Two copies of a row with different ids are still copies."""
    train = bundle.train
    if not isinstance(train, Split) or train.inputs.dim() != 2 or len(train) < 20:
        return []
    values = train.inputs.double()
    statistics = bundle.info.normalization or {}
    if statistics.get("mean") and len(statistics["mean"]) == values.shape[1]:
        mean = torch.tensor(statistics["mean"], dtype=torch.float64)
        std = torch.tensor(statistics["std"], dtype=torch.float64)
        values = values * std + mean
    found = []
    for column in range(values.shape[1]):
        raw = values[:, column]
        # float32 standardised values give the ids back only to ~1e-7 of the column's size
        tolerance = 1e-3 + 1e-6 * float(raw.abs().max())
        integral = bool(((raw - raw.round()).abs() < tolerance).all())
        if integral and len(torch.unique(raw.round())) == len(raw):
            found.append(column)
    return found


def copies_of_training_rows(
    bundle: DataBundle, split: Any, drop: list[int] | None
) -> list[int] | None:
    """Positions of ``split``'s rows that equal a training row (``drop``: columns left out);
    None when either split cannot be searched (lazy, empty, or above ``HASH_LIMIT`` rows)."""
    train_rows, rows = _rows(bundle.train, drop), _rows(split, drop)
    if train_rows is None or rows is None:
        return None
    return _copies(rows, row_keys(split, drop), train_rows, row_keys(bundle.train, drop))


def drop_copies(bundle: DataBundle) -> tuple[DataBundle, dict[str, int]]:
    """``bundle`` without the validation and test rows that copy a training row, id-like columns
    left out (``data.dedupe``); how many rows each split lost."""
    ids = id_columns(bundle) or None
    kept: dict[str, Any] = {}
    dropped: dict[str, int] = {}
    for name in ("val", "test"):
        split = getattr(bundle, name)
        if split is None:
            kept[name] = None
            continue
        copies = copies_of_training_rows(bundle, split, ids)
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
