"""Reading YAML that a user wrote: every problem is one ConfigError line naming the file or key.

Numbers such as ``1e-3`` are floats (YAML 1.2), not the strings YAML 1.1 makes of them. A file
that is not UTF-8 text, YAML nested deeper than any config needs, or a document so large that
its aliases expand past a sane size, is refused in one line rather than with a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from fathom.errors import ConfigError

MAX_NESTING = 32  # a config is 3 or 4 levels deep; augmentation options add a few
MAX_NODES = 100_000  # values visited, aliases counted each time they are used


class TooDeep(Exception):
    """Raised by the loader's scanner at the first collection nested past MAX_NESTING."""


class FathomLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``1e-3`` and ``5E4`` as floats and stops at once on deep
    nesting (PyYAML's scanner is quadratic in the depth: 5,000 brackets took 8 s)."""

    def fetch_flow_collection_start(self, TokenClass: type) -> None:  # noqa: N803 - PyYAML's name
        if self.flow_level >= MAX_NESTING:
            raise TooDeep
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_NESTING:
            raise TooDeep
        return super().add_indent(column)


FathomLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, where: str) -> Any:
    """The value of YAML ``text``; a ``yaml.YAMLError`` for bad syntax, a ConfigError for nesting."""
    try:
        value = yaml.load(text, Loader=FathomLoader)  # noqa: S506 - a SafeLoader subclass
    except (RecursionError, TooDeep):
        raise ConfigError(f"{where}: nested too deeply (at most {MAX_NESTING} levels)") from None
    check_nesting(value, where)
    return value


def read_yaml_text(text: str, where: str) -> Any:
    """The value of YAML ``text``; bad YAML is a ConfigError naming ``where`` and the line."""
    try:
        return parse_yaml(text, where)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{where}{line}: not valid YAML ({problem})") from None


def read_yaml_file(path: Path, what: str = "file") -> Any:
    """The YAML value in ``path``; a missing, unreadable or non-UTF-8 file is one ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {_short(path)}") from None
    except OSError as error:  # a directory, no permission, a name too long, ...
        raise ConfigError(f"cannot read {what} {_short(path)}: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{_short(path)}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8"
        ) from None
    return read_yaml_text(text, str(_short(path)))


def check_nesting(value: Any, where: str) -> None:
    """Refuse a value nested deeper than MAX_NESTING or holding more than MAX_NODES values."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    visited = 0
    while stack:
        node, depth, path = stack.pop()
        visited += 1
        if visited > MAX_NODES:
            raise ConfigError(f"{where}: too large (more than {MAX_NODES:,} values)")
        if depth > MAX_NESTING:
            raise ConfigError(
                f"{where}: nested too deeply at '{path}' (at most {MAX_NESTING} levels)"
            )
        if isinstance(node, Mapping):
            children = [(child, f"{path}.{key}".lstrip(".")) for key, child in node.items()]
        elif isinstance(node, list | tuple):
            children = [(child, f"{path}[{index}]") for index, child in enumerate(node)]
        else:
            continue
        stack.extend((child, depth + 1, name) for child, name in children)


def _short(path: Path, limit: int = 120) -> str:
    """The path as text, cut in the middle when a name is absurdly long."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"
