"""New inputs for prediction: image files, ``.npy`` arrays and CSV rows, shaped like the training data.

``read_inputs`` returns tensors that are NOT normalised: apply the run's statistics with
``fathom.data.splits.normalize_inputs(inputs, **info.normalization)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fathom.data.bundle import DataInfo
from fathom.data.folder import IMAGE_EXTENSIONS, decode_image
from fathom.data.tabular import encode_features, read_csv_rows
from fathom.errors import DataError, closest


def read_inputs(paths: list[Path], info: DataInfo) -> torch.Tensor:
    """Read files (images, ``.npy``, ``.csv``) into one float32 batch of shape (N, *info.input_shape)."""
    if not paths:
        raise DataError("no input files given")
    return torch.cat([read_input_file(Path(path), info) for path in paths])


def read_input_file(path: Path, info: DataInfo) -> torch.Tensor:
    """One file as a float32 batch (N, *info.input_shape)."""
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    if "tokenizer" in info.extra:  # text models read a text per line
        from fathom.data.text import read_text_inputs

        return read_text_inputs(path, info)
    if suffix in IMAGE_EXTENSIONS:
        return read_image(path, info)
    if suffix == ".npy":
        return read_array(path, info)
    if suffix == ".csv":
        return read_table(path, info)
    raise DataError(f"{path}: unsupported input type '{suffix}' (expected an image, .npy or .csv)")


def _expects(info: DataInfo) -> str:
    shape = tuple(info.input_shape)
    if len(shape) == 3:
        return f"images of shape {shape} (an image file or .npy)"
    if len(shape) == 1:
        return f"rows of {shape[0]} features (.csv or .npy)"
    return f"arrays of shape {shape} (.npy)"


def read_image(path: Path, info: DataInfo) -> torch.Tensor:
    """An image file converted to the training channels and size, scaled to [0, 1]: (1, C, H, W)."""
    if len(info.input_shape) != 3 or info.input_shape[0] not in (1, 3):
        raise DataError(f"{path}: an image, but the model expects {_expects(info)}")
    channels, height, width = info.input_shape
    array = decode_image(path, "L" if channels == 1 else "RGB", (width, height))
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def read_array(path: Path, info: DataInfo) -> torch.Tensor:
    """A ``.npy`` file holding one example or a batch; uint8 images are scaled to [0, 1]."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npy array ({error})") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: expected a single .npy array, found an .npz archive")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: array of {array.dtype}, expected numbers")
    shape = tuple(info.input_shape)
    image = len(shape) == 3
    if image and shape[0] == 1 and array.ndim in (2, 3) and array.shape[-2:] == shape[1:]:
        array = array.reshape(-1, *shape)  # grey images given without their channel axis
    elif array.shape == shape:
        array = array[None]
    if array.shape[1:] != shape:
        raise DataError(
            f"{path}: array of shape {tuple(array.shape)}, expected {shape} or (N, *{shape})"
        )
    scale = image and array.dtype == np.uint8
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused next
        array = array.astype(np.float32)
    check_finite(path, array)
    inputs = torch.from_numpy(array)
    return inputs.div_(255.0) if scale else inputs


def check_finite(path: Path, array: np.ndarray) -> None:
    """A DataError naming the file and the first NaN or infinity (as float32, the model's type)."""
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(index) for index in np.argwhere(bad)[0])
        raise DataError(
            f"{path}: {int(bad.sum())} of {array.size} values are NaN or infinite "
            f"(the first, {array[first]}, at index {first}); predictions need finite inputs"
        )


def read_table(path: Path, info: DataInfo) -> torch.Tensor:
    """CSV rows with a header naming the training feature columns (the target column is ignored)."""
    if len(info.input_shape) != 1:
        raise DataError(f"{path}: a table, but the model expects {_expects(info)}")
    columns: list[dict[str, Any]] = info.extra.get("columns") or [
        {"name": name, "kind": "numeric"} for name in info.feature_names or []
    ]
    if not columns:
        raise DataError(
            f"{path}: the run records no feature columns, so a CSV cannot be matched to them"
        )
    header, rows, lines = read_csv_rows(path, info.extra.get("delimiter", ","))
    for column in columns:
        if column["name"] not in header:
            raise DataError(
                f"{path}: no column '{column['name']}'{closest(column['name'], header)}; "
                f"the model needs: {', '.join(column['name'] for column in columns)}"
            )
    table = {name: [row[index] for row in rows] for index, name in enumerate(header)}
    features = encode_features(path, columns, table, lines)
    if features.shape[1] != info.input_shape[0]:
        raise DataError(
            f"{path}: encodes to {features.shape[1]} features, the model expects {info.input_shape[0]}"
        )
    return torch.from_numpy(features)
