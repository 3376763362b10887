"""The federated settings of a run, from three layers (the last wins): a config's ``federated:``
section, ``federated.KEY=VALUE`` overrides, and the caller's keywords (``fathom federate``'s
flags). Each setting is checked by name and type, so a mistake is one line naming it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fathom.assemble import ConfigSource, as_layer
from fathom.config import call_with_checked_kwargs, parse_overrides
from fathom.errors import ConfigError
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
    """A ``FederatedConfig`` from ``settings``, each key known and each value of its type
    (checked against the dataclass's hints, as model and task options are)."""
    return call_with_checked_kwargs(FederatedConfig, settings, SECTION)
