"""Requests into model inputs, read as ``fathom predict`` reads files, with one 4xx per fault.

Images are decoded by the run's own reader (``fathom.data.folder.decode_image``: channels and
size of the training data, bilinear resize, scaled to [0, 1]); arrays follow ``.npy`` rules
(one example or a batch; grey images may omit the channel axis; uint8 scaled to [0, 1]); texts
use the run's tokenizer padded to its ``max_length``. Then the run's normalisation is applied.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from fathom.errors import DataError
from fathom.serving.model import ServedModel


class RequestError(Exception):
    """A bad request: its HTTP status and one line for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """What one request may hold."""

    max_examples: int = 64
    max_image_side: int = 4096
    max_text_chars: int = 10_000


def finish(model: ServedModel, inputs: torch.Tensor | np.ndarray) -> np.ndarray:
    """Normalise float inputs with the run's statistics, as ``predict_run`` does: the same
    float32 subtraction and division, so the same bits, in numpy (a request's few thousand
    values cost microseconds there, tens in torch's per-call overhead, on the event loop)."""
    array = inputs.numpy() if isinstance(inputs, torch.Tensor) else inputs
    if model.tokens:
        return array.astype(np.int64)
    array = array.astype(np.float32, copy=False)
    statistics = model.normalization_arrays(array.ndim)
    if statistics is not None:
        array = (array - statistics[0]) / statistics[1]
    return np.ascontiguousarray(array, dtype=np.float32)


def check_count(count: int, limits: Limits) -> None:
    if count == 0:
        raise RequestError(422, "no examples in the request")
    if count > limits.max_examples:
        raise RequestError(
            413, f"{count} examples in one request; the limit is {limits.max_examples}"
        )


def read_images(model: ServedModel, images: list[bytes], limits: Limits) -> np.ndarray:
    """Encoded image files (PNG, JPEG, ...) → the model's batch."""
    from fathom.data.folder import decode_image

    shape = tuple(model.info.input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or model.tokens:
        raise RequestError(422, f"this model takes {describe_input(model)}, not images")
    check_count(len(images), limits)
    channels, height, width = shape
    arrays = []
    for index, data in enumerate(images):
        try:
            with Image.open(io.BytesIO(data)) as probe:
                size = probe.size
        except (OSError, ValueError, Image.DecompressionBombError):
            raise RequestError(400, f"image {index}: not a readable image file") from None
        if max(size) > limits.max_image_side:
            raise RequestError(
                413, f"image {index}: {size[0]}x{size[1]} pixels; the limit is "
                f"{limits.max_image_side} per side"
            )  # fmt: skip
        try:
            array = decode_image(io.BytesIO(data), "L" if channels == 1 else "RGB", (width, height))  # type: ignore[arg-type]
        except DataError:
            raise RequestError(400, f"image {index}: cannot be decoded (truncated?)") from None
        arrays.append(array)
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0)
    return finish(model, batch)


def decode_base64_images(values: Any) -> list[bytes]:
    if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
        raise RequestError(422, "'images' must be a list of base64 strings")
    decoded = []
    for index, text in enumerate(values):
        payload = text.split(",", 1)[1] if text.startswith("data:") else text  # data URLs too
        try:
            decoded.append(base64.b64decode(payload, validate=True))
        except (binascii.Error, ValueError):
            raise RequestError(400, f"images[{index}]: not valid base64") from None
    return decoded


def read_texts(model: ServedModel, texts: Any, limits: Limits) -> np.ndarray:
    """Texts → token ids with the run's tokenizer, padded to its ``max_length``."""
    from fathom.data.text import encode_text_inputs

    if "tokenizer" not in model.info.extra:
        raise RequestError(422, f"this model takes {describe_input(model)}, not texts")
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise RequestError(422, "'texts' must be a list of strings")
    check_count(len(texts), limits)
    for index, text in enumerate(texts):
        if len(text) > limits.max_text_chars:
            raise RequestError(
                413, f"texts[{index}]: {len(text)} characters; the limit is {limits.max_text_chars}"
            )
    return finish(model, encode_text_inputs(texts, model.info))


def read_arrays(model: ServedModel, values: Any, dtype: str, limits: Limits) -> np.ndarray:
    """Nested JSON arrays: one example or a batch, float (default) or uint8 pixel values."""
    if dtype not in ("float32", "uint8", "int64"):
        raise RequestError(422, f"dtype '{dtype}': expected float32, uint8 or int64")
    try:  # numpy's own dtype first: integer pixels convert in half the time of float64 lists
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":  # huge integers, numeric strings: as float64 reads
            array = np.asarray(values, dtype=np.float64)
        array = array.astype(np.float64, copy=False)
    except (ValueError, TypeError, OverflowError):
        raise RequestError(422, "'inputs' must be a rectangular array of numbers") from None
    shape = tuple(model.info.input_shape)
    if len(shape) == 3 and shape[0] == 1 and array.ndim in (2, 3) and array.shape[-2:] == shape[1:]:
        array = array.reshape(-1, *shape)  # grey images given without their channel axis
    elif array.shape == shape:
        array = array[None]
    if array.shape[1:] != shape:
        raise RequestError(
            422,
            f"inputs of shape {list(array.shape)}; expected {list(shape)} or [N, *{list(shape)}]",
        )
    check_count(len(array), limits)
    if not np.isfinite(array).all():
        raise RequestError(422, "inputs hold NaN or infinite values")
    return finish(model, torch.from_numpy(check_range(model, array, dtype)))


def check_range(model: ServedModel, array: np.ndarray, dtype: str) -> np.ndarray:
    """Values in the range their dtype and the model allow; uint8 images scaled to [0, 1]."""
    if dtype in ("uint8", "int64") and not (array == np.round(array)).all():
        raise RequestError(422, f"dtype {dtype}: inputs must be whole numbers")
    if model.tokens:
        vocabulary = int(model.info.extra.get("vocab_size", 0)) or math.inf
        if dtype != "int64" or array.min() < 0 or array.max() >= vocabulary:
            raise RequestError(422, f"token ids must be int64 in [0, {vocabulary})")
        return array.astype(np.int64)
    if dtype == "int64":
        raise RequestError(422, "dtype int64 is for token ids; this model takes floats")
    if dtype == "uint8":
        if array.min() < 0 or array.max() > 255:
            raise RequestError(422, "dtype uint8: values must lie in [0, 255]")
        return (
            (array / 255.0).astype(np.float32)
            if len(model.info.input_shape) == 3
            else array.astype(np.float32)
        )
    if len(model.info.input_shape) == 3 and (array.min() < 0 or array.max() > 1):
        raise RequestError(422, "image values must lie in [0, 1] (or send dtype uint8, 0-255)")
    return array.astype(np.float32)


def describe_input(model: ServedModel) -> str:
    shape = list(model.info.input_shape)
    if model.tokens:
        return "texts ('texts': [...])"
    if len(shape) == 3:
        return f"images of shape {shape} (files, base64 'images' or 'inputs' arrays)"
    return f"arrays of shape {shape} ('inputs')"


def read_json_request(model: ServedModel, payload: Any, limits: Limits) -> np.ndarray:
    """``{"inputs": [...], "dtype": ...}``, ``{"images": [base64, ...]}`` or ``{"texts": [...]}``."""
    if not isinstance(payload, dict):
        raise RequestError(
            422, "the JSON body must be an object with 'inputs', 'images' or 'texts'"
        )
    given = [key for key in ("inputs", "images", "texts") if key in payload]
    unknown = sorted(set(payload) - {"inputs", "images", "texts", "dtype", "top_k"})
    if unknown:
        raise RequestError(
            422, f"unknown field '{unknown[0][:40]}' (expected inputs, images or texts)"
        )
    if len(given) != 1:
        raise RequestError(422, "give exactly one of 'inputs', 'images' or 'texts'")
    if given[0] == "texts":
        return read_texts(model, payload["texts"], limits)
    if given[0] == "images":
        images = payload["images"]
        if isinstance(images, list) and len(images) > limits.max_examples:
            check_count(len(images), limits)
        return read_images(model, decode_base64_images(images), limits)
    dtype = payload.get("dtype", "int64" if model.tokens else "float32")
    if not isinstance(dtype, str):
        raise RequestError(422, "'dtype' must be a string")
    return read_arrays(model, payload["inputs"], dtype, limits)
