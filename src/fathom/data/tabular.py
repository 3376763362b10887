"""Your own table: a CSV file with a header row and a target column.

Numeric columns become float features; other columns (or those listed in ``categorical``) are
one-hot encoded with categories taken from the data. The encodings are stored in
``info.extra["columns"]`` so that new rows are encoded identically at prediction time (an unseen
category encodes as all zeros). Every problem is one ``DataError`` naming the file, the line and
the column.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.errors import ConfigError, DataError, closest

TASKS = ("auto", "classification", "regression")
NUMERIC_SHARE = (
    0.9  # a column numeric in at least this share of rows is numeric; the rest are errors
)
MAX_AUTO_CLASSES = 50  # an integer-valued target with at most this many values is a classification
# More distinct strings than this in a column smells like an ID or free text.
MAX_AUTO_CATEGORIES = 1000


def csv_table(
    root: Path,
    download: bool = True,
    path: str | None = None,
    target: str | None = None,
    task: str = "auto",
    categorical: list[str] | str | None = None,
    delimiter: str = ",",
    sensitive: str | None = None,
    sensitive_as_feature: bool = False,
) -> DataBundle:
    """Load ``path`` (relative to the working directory) and predict its ``target`` column.
    ``sensitive``: a column kept per example as ``Split.groups`` (fairness), not a feature.

    ``task="auto"`` picks classification for a non-numeric target or one with at most 50 distinct
    integer values, and regression otherwise. ``root`` and ``download`` are unused.
    """
    categorical = [categorical] if isinstance(categorical, str) else list(categorical or [])
    check_table_options(path, target, task)
    file = Path(path).expanduser()
    header, rows, lines = read_csv_rows(file, delimiter)
    _check_columns(file, header, target, categorical)
    table = {name: [row[index] for row in rows] for index, name in enumerate(header)}
    groups, group_names = sensitive_groups(file, header, table, sensitive, target)
    left_out = {target} | ({sensitive} if sensitive and not sensitive_as_feature else set())
    columns = [
        describe_column(file, name, table[name], lines, name in categorical)
        for name in header
        if name not in left_out
    ]
    inputs = torch.from_numpy(encode_features(file, columns, table, lines))
    targets, task, class_names = encode_target(
        file, target, table[target], lines, task, target in categorical
    )
    extra: dict[str, Any] = {
        "columns": columns,
        "path": str(file.resolve()),
        "delimiter": delimiter,
    }
    if task == "regression":
        extra["target_size"] = 1
    extra |= {"sensitive": {"column": sensitive, "groups": group_names}} if sensitive else {}
    info = DataInfo(
        name="csv",
        task=task,
        input_shape=(int(inputs.shape[1]),),
        num_classes=len(class_names) if class_names is not None else None,
        class_names=class_names,
        feature_names=feature_names(columns),
        target_name=target,
        extra=extra,
    )
    rows = torch.tensor(lines, dtype=torch.int64)  # each example's line in the file
    return DataBundle(info, Split(inputs, targets, rows=rows, groups=groups))


def check_table_options(path: str | None, target: str | None, task: str) -> None:
    """The ``csv`` dataset's required options, and a task it knows."""
    if not path or not target:
        raise ConfigError(
            "dataset 'csv' needs data.path (a CSV file) and data.target (its target column)"
        )
    if task not in TASKS:
        raise ConfigError(
            f"data.task must be one of {', '.join(TASKS)}, got '{task}'{closest(task, TASKS)}"
        )


def sensitive_groups(
    file: Path, header: list[str], table: dict[str, list[str]], sensitive: str | None, target: str
) -> tuple[torch.Tensor | None, list[str] | None]:
    """Group index per row of the ``sensitive`` column, and the group names (sorted)."""
    if not sensitive:
        return None, None
    if sensitive not in header:
        raise ConfigError(
            f"data.sensitive: {file} has no column '{sensitive}'{closest(sensitive, header)}"
        )
    if sensitive == target:
        raise ConfigError(f"data.sensitive: '{sensitive}' is the target column")
    values = [value.strip() for value in table[sensitive]]
    names = sorted(set(values))
    lookup = {name: index for index, name in enumerate(names)}
    return torch.tensor([lookup[value] for value in values]), names


def _check_columns(file: Path, header: list[str], target: str, categorical: list[str]) -> None:
    if target not in header:
        shown = ", ".join(header[:20]) + (", ..." if len(header) > 20 else "")
        raise DataError(
            f"{file}: no column '{target}'{closest(target, header)}; the header has: {shown}"
        )
    for name in categorical:
        if name not in header:
            raise ConfigError(
                f"data.categorical: {file} has no column '{name}'{closest(name, header)}"
            )
    if len(header) == 1:
        raise DataError(f"{file}: no feature columns besides the target '{target}'")


def read_csv_rows(file: Path, delimiter: str = ",") -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the data rows (fields stripped) and each row's 1-based line number in the file.

    Blank lines are skipped; a row with the wrong number of fields is an error.
    """
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ConfigError(f"data.delimiter must be a single character, got {delimiter!r}")
    if not file.is_file():
        raise DataError(f"CSV file not found: {file}")
    rows, lines = [], []
    with open(file, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = [name.strip() for name in next(reader, [])]
            if not header:
                raise DataError(f"{file}: empty file; expected a header row naming the columns")
            _check_header(file, header)
            for row in reader:
                if not any(field.strip() for field in row):
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{file} line {reader.line_num}: {len(row)} fields, expected {len(header)} as in the header"
                    )
                rows.append([field.strip() for field in row])
                lines.append(reader.line_num)
        except csv.Error as error:
            raise DataError(f"{file} line {reader.line_num}: {error}") from None
        except UnicodeDecodeError as error:
            raise DataError(
                f"{file}: not UTF-8 text ({error.reason} at byte {error.start})"
            ) from None
    if not rows:
        raise DataError(f"{file}: no data rows below the header")
    return header, rows, lines


def _check_header(file: Path, header: list[str]) -> None:
    seen = set()
    for number, name in enumerate(header, start=1):
        if not name:
            raise DataError(f"{file} line 1: column {number} has an empty name")
        if name in seen:
            raise DataError(f"{file} line 1: column '{name}' appears twice")
        seen.add(name)


def describe_column(
    file: Path, name: str, values: list[str], lines: list[int], categorical: bool
) -> dict[str, Any]:
    """``{"name", "kind": "numeric"}`` or ``{"name", "kind": "categorical", "categories"}``."""
    _check_missing(file, name, values, lines)
    share = 0.0
    if not categorical:
        numbers = parse_numbers(values)
        bad = np.isnan(numbers)
        share = 1.0 - float(bad.mean())
        if share >= NUMERIC_SHARE:
            if bad.any():
                row = int(np.argmax(bad))
                raise DataError(
                    f"{file} line {lines[row]}, column '{name}': '{values[row]}' is not a number "
                    f"({share:.0%} of the column is; list it in data.categorical to one-hot encode it)"
                )
            return {"name": name, "kind": "numeric"}
    categories = sorted(set(values))
    if not categorical and len(categories) > MAX_AUTO_CATEGORIES:
        numeric = f"; {share:.0%} are numbers, so fix the others" if share >= 0.5 else ""
        raise DataError(
            f"{file}, column '{name}': too many categories to one-hot encode ({len(categories)} "
            f"distinct values{numeric}); an ID or free text? drop the column, or list it in "
            "data.categorical to encode it anyway"
        )
    return {"name": name, "kind": "categorical", "categories": categories}


def _check_missing(file: Path, name: str, values: list[str], lines: list[int]) -> None:
    for row, value in enumerate(values):
        if value == "":
            raise DataError(
                f"{file} line {lines[row]}, column '{name}': missing value (fill it in or drop the row)"
            )


def parse_numbers(values: list[str]) -> np.ndarray:
    """float64 values, NaN where a value is not a finite number."""
    try:
        numbers = np.array(values, dtype=np.float64)
    except ValueError:
        numbers = np.array([_to_float(value) for value in values], dtype=np.float64)
    numbers[~np.isfinite(numbers)] = np.nan
    return numbers


def _to_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan


def encode_features(
    file: Path, columns: list[dict[str, Any]], table: dict[str, list[str]], lines: list[int]
) -> np.ndarray:
    """Encode columns described by ``describe_column`` into a float32 matrix (rows, features)."""
    blocks = []
    for column in columns:
        name, values = column["name"], table[column["name"]]
        _check_missing(file, name, values, lines)
        if column["kind"] == "numeric":
            numbers = parse_numbers(values)
            if np.isnan(numbers).any():
                row = int(np.argmax(np.isnan(numbers)))
                raise DataError(
                    f"{file} line {lines[row]}, column '{name}': '{values[row]}' is not a number"
                )
            blocks.append(numbers[:, None])
        else:
            index = {category: position for position, category in enumerate(column["categories"])}
            codes = np.array([index.get(value, -1) for value in values], dtype=np.int64)
            one_hot = np.zeros((len(values), len(index)), dtype=np.float64)
            known = np.nonzero(codes >= 0)[0]
            one_hot[known, codes[known]] = 1.0  # an unseen category stays all zeros
            blocks.append(one_hot)
    return np.concatenate(blocks, axis=1).astype(np.float32)


def feature_names(columns: list[dict[str, Any]]) -> list[str]:
    """One name per encoded feature: the column, or ``column=category`` for one-hot features."""
    names = []
    for column in columns:
        if column["kind"] == "numeric":
            names.append(column["name"])
        else:
            names.extend(f"{column['name']}={category}" for category in column["categories"])
    return names


def encode_target(
    file: Path, name: str, values: list[str], lines: list[int], task: str, categorical: bool
) -> tuple[torch.Tensor, str, list[str] | None]:
    """Targets, the resolved task, and the sorted class names (None for regression)."""
    _check_missing(file, name, values, lines)
    numbers = parse_numbers(values)
    bad = np.isnan(numbers)
    numeric = not categorical and not bad.any()
    integer = numeric and bool(np.all(numbers == np.round(numbers)))
    if task == "auto":
        if not numeric and not categorical and 1.0 - float(bad.mean()) >= NUMERIC_SHARE:
            row = int(np.argmax(bad))
            raise DataError(
                f"{file} line {lines[row]}, column '{name}': '{values[row]}' is not a number; "
                "set data.task=classification to treat the target values as class names"
            )
        small = integer and len(np.unique(numbers)) <= MAX_AUTO_CLASSES
        task = "classification" if not numeric or small else "regression"
    if task == "regression":
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{file} line {lines[row]}, column '{name}': '{values[row]}' is not a number"
            )
        return torch.from_numpy(numbers.astype(np.float32)), task, None
    if numeric:  # numeric classes sort by value, so labels 0..K-1 keep their index
        unique, codes = np.unique(numbers, return_inverse=True)
        class_names = [str(int(value)) if integer else repr(float(value)) for value in unique]
        return torch.from_numpy(codes.astype(np.int64).reshape(-1)), task, class_names
    class_names = sorted(set(values))
    index = {value: position for position, value in enumerate(class_names)}
    return torch.tensor([index[value] for value in values], dtype=torch.int64), task, class_names
