"""The federated settings of a run, from three layers (the last wins): a config's ``federated:``
section, ``federated.KEY=VALUE`` overrides, and the caller's keywords (``fathom federate``'s
flags). Each setting is checked by name and type, so a mistake is one line naming it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any, get_args, get_type_hints

from fathom.assemble import ConfigSource, as_layer
from fathom.config import parse_overrides
from fathom.errors import ConfigError, closest
from fathom.federated.simulation import FederatedConfig

SECTION = "federated"


def split_federated(
    config: ConfigSource, overrides: Iterable[str]
) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """(the config as a layer without its ``federated:`` section, the other overrides, the
    section with the ``federated.*`` overrides applied)."""
    layer = as_layer(config)
    section = layer.pop(SECTION, None) or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{SECTION}: expected a mapping of settings, got {section!r}")
    chosen, rest = dict(section), []
    for item in overrides:
        if item.startswith(f"{SECTION}."):
            chosen.update(parse_overrides([item])[SECTION])
        else:
            rest.append(item)
    return layer, rest, chosen


def federated_config(settings: Mapping[str, Any]) -> FederatedConfig:
    """A ``FederatedConfig`` from ``settings``, each key known and each value of its type."""
    kinds = get_type_hints(FederatedConfig)
    names = [field.name for field in dataclasses.fields(FederatedConfig)]
    checked = {}
    for key, value in settings.items():
        if key not in kinds:
            raise ConfigError(f"unknown setting '{SECTION}.{key}'{closest(key, names)}")
        checked[key] = checked_value(key, value, kinds[key])
    return FederatedConfig(**checked)


def checked_value(key: str, value: Any, kind: Any) -> Any:
    """``value`` as the setting's type: an int, a finite float (an int is welcome), a string;
    ``None`` where the setting allows it."""
    allowed = get_args(kind) or (kind,)
    if value is None and type(None) in allowed:
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if float in allowed:
        if number and math.isfinite(value):
            return float(value)
        expected = "a finite number"
    elif int in allowed:
        if number and isinstance(value, int):
            return value
        expected = "an integer"
    else:
        if isinstance(value, str):
            return value
        expected = "a name"
    raise ConfigError(f"{SECTION}.{key}: expected {expected}, got {value!r}")
