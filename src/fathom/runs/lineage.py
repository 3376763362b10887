"""How a run's model was made: its base architecture, then the transforms applied to it.

``run.json`` holds ``lineage = {"version": 1, "base": {"name", "init", "options"}, "transforms":
[{"name", "params"}, ...]}``. ``replay`` builds the base by name and applies each transform in
order, so the saved weights fit whatever shape the model ended in (a head reset to other
classes, pruned channels, quantized layers, ...): any model Fathom makes, Fathom loads, with no
pickle. A capability that changes a saved model registers its transform here (one line) and
calls ``apply_transform``, which applies it and records it on the module.
"""

from __future__ import annotations

import json
from typing import Any

from torch import nn

from fathom import models
from fathom.config import call_with_checked_kwargs
from fathom.errors import CheckpointError, ConfigError
from fathom.registry import TRANSFORMS

VERSION = 1

TRANSFORMS.register(
    "reset_head",
    "fathom.models.transforms:reset_head",
    description="replace the final linear layer with one of num_classes outputs",
)
TRANSFORMS.register(
    "init_from",
    "fathom.transfer.weights:init_from",
    description="provenance of the starting weights (source, sha256); changes no shape",
)
TRANSFORMS.register(
    "prune_magnitude",
    "fathom.compression.pruning:prune_magnitude",
    description="magnitude pruning made permanent (zeros in the weights); changes no shape",
)
TRANSFORMS.register(
    "prune_channels",
    "fathom.compression.pruning:prune_channels",
    description="channels removed by Torch-Pruning; replay keeps the recorded channels",
)
TRANSFORMS.register(
    "onnx_int8",
    "fathom.compression.quantization:onnx_int8",
    description="ONNX Runtime int8 graph of the model (static for CNNs, else dynamic)",
)
TRANSFORMS.register("temperature", "fathom.models.calibrated:temperature_scale", description="divide the logits by a fitted temperature (calibration)")  # fmt: skip


def apply_transform(model: nn.Module, name: str, **params: Any) -> nn.Module:
    """Apply the registered transform ``name`` to ``model`` and record it in the model's lineage.

    ``params`` must be JSON values: they are saved in run.json and given again on replay.
    """
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError):
        raise ConfigError(f"transform '{name}': its parameters must be JSON values") from None
    transform = TRANSFORMS.get(name)
    result = call_with_checked_kwargs(transform, {"model": model, **params}, where=name)
    spec = getattr(model, "fathom_spec", None)
    if spec is not None:
        result.fathom_spec = spec
    result.fathom_transforms = [*transforms_of(model), {"name": name, "params": params}]
    return result


def transforms_of(model: nn.Module) -> list[dict[str, Any]]:
    """The transforms recorded on ``model`` so far, oldest first."""
    return list(getattr(model, "fathom_transforms", []))


def lineage_of(model: nn.Module) -> dict[str, Any] | None:
    """The lineage of a model built by ``fathom.models.create`` (None for a user's own module)."""
    spec = getattr(model, "fathom_spec", None)
    if spec is None:
        return None
    options = {key: value for key, value in spec.items() if key not in ("name", "init")}
    base = {"name": spec["name"], "init": spec.get("init", "default"), "options": options}
    lineage = {"version": VERSION, "base": base, "transforms": transforms_of(model)}
    return json.loads(json.dumps(lineage))  # tuples become lists, as they will be read back


def replay(lineage: dict[str, Any], where: str = "run.json") -> nn.Module:
    """The model a lineage describes, with freshly initialised weights (load the run's next)."""
    if not isinstance(lineage, dict) or not isinstance(lineage.get("base"), dict):
        raise CheckpointError(f"{where}: the model's lineage is malformed")
    if int(lineage.get("version", 0)) > VERSION:
        raise CheckpointError(
            f"{where}: lineage written by a newer Fathom (version {lineage['version']})"
        )
    base = lineage["base"]
    options = base.get("options", {})
    model = models.create(base["name"], init="default", **options)
    model.fathom_spec = {"name": base["name"], "init": base.get("init", "default"), **options}
    for step in lineage.get("transforms", []):
        model = apply_transform(model, step["name"], **step.get("params", {}))
    return model
