"""Options a user passes to a component (model, task, augmentation) checked against its signature.

Each keyword is validated strictly against the factory's type hint: ``true`` is not a number,
``2.5`` is not an integer (an integer is a valid float), a string is not a list, NaN and infinity
are refused, and ``Annotated`` ranges hold. Factories declare ranges with the aliases below::

    def cnn(channels: Widths = (32, 64), hidden: SizeOrZero = 128, dropout: Probability = 0.0,
            batch_norm: bool = True) -> CNN: ...
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from fathom.errors import ConfigError

Size = Annotated[int, Field(ge=1, le=65536)]  # a width, channel count, hidden size or class count
SizeOrZero = Annotated[int, Field(ge=0, le=65536)]  # 0 turns the layer off
VocabularySize = Annotated[int, Field(ge=1, le=2**24)]
Depth = Annotated[int, Field(ge=1, le=1024)]  # layers, blocks, heads
KernelSize = Annotated[int, Field(ge=1, le=63)]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]  # dropout and other rates
Multiplier = Annotated[float, Field(gt=0.0, le=64.0)]  # a width or depth multiplier
Widths = Annotated[Sequence[Size], Field(min_length=1, max_length=1024)]  # one entry per layer

STRICT = ConfigDict(strict=True, allow_inf_nan=False, arbitrary_types_allowed=True)


def check_arguments(function: Callable[..., Any], kwargs: Mapping[str, Any], where: str) -> None:
    """Raise a one-line ConfigError for the first keyword whose value does not fit its hint."""
    hints = _type_hints(function)
    for key, value in kwargs.items():
        adapter = _adapter(hints.get(key))
        if adapter is None:
            continue
        try:
            adapter.validate_python(_plain(value))
        except ValidationError as error:
            raise ConfigError(_describe(where, key, value, error)) from None


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    target = function.__init__ if inspect.isclass(function) else function
    try:
        return typing.get_type_hints(target, include_extras=True)
    except (NameError, TypeError, AttributeError):  # hints naming what is not importable here
        return {}


@functools.lru_cache(maxsize=1024)
def _cached_adapter(hint: Any) -> TypeAdapter | None:
    try:
        return TypeAdapter(hint, config=STRICT)
    except Exception:  # noqa: BLE001 - a hint pydantic cannot check (a protocol, a callable...)
        return None


def _adapter(hint: Any) -> TypeAdapter | None:
    if hint is None or hint is Any:
        return None
    try:
        return _cached_adapter(hint)
    except TypeError:  # an unhashable hint
        return None


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers, for the check only (``int(np.int64(3))`` is valid)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        items = [_plain(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def _describe(where: str, key: str, value: Any, error: ValidationError) -> str:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    problems = error.errors()
    # a union reports one error per member: name the member closest to the value's own shape
    first = min(problems, key=lambda problem: _mismatch_rank(problem["type"]))
    location = "".join(f"[{part}]" if isinstance(part, int) else "" for part in first["loc"])
    message = first["msg"][0].lower() + first["msg"][1:]
    if first["type"] == "is_instance_of":  # "an instance of Sequence": say what is wanted
        message = "expected a list"
    return f"{key_path(where, key + location)}: {message}, got {shown}"


def key_path(where: str, key: str) -> str:
    """The config key a user types for option ``key`` of component ``where``."""
    from fathom.registry import MODELS

    if where.startswith("data.augment") or where == "federated":
        return f"{where}.{key}"
    if where.startswith("task "):
        return f"task.{key} ({where.removeprefix('task ')})"
    if where in MODELS:
        return f"model.{key} ({where})"
    return f"'{where}' option '{key}'"


def _mismatch_rank(kind: str) -> int:
    """Range and value errors say more than 'wrong type' errors of other union members."""
    return 0 if kind.startswith(("greater", "less", "literal", "too_")) else 1
