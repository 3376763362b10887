"""``fathom.load``: a run folder back into a ``Run``, its model rebuilt from the lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from fathom.assemble import build_model
from fathom.config import FathomConfig
from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError, FathomError
from fathom.runs.folder import WEIGHTS_FILE, load_weights, read_config, read_run_json
from fathom.runs.lineage import replay
from fathom.runs.run import Run


def load(path: str | Path, model: nn.Module | None = None) -> Run:
    """Load a finished (or interrupted) run: its config, data facts and trained weights.

    The model is rebuilt from the run's lineage (its base architecture, then each recorded
    transform), so fine-tuned, pruned or quantized models load like any other; runs written
    before lineages existed are rebuilt from their config. For your own module pass ``model=``.
    """
    path = Path(path)
    config = read_config(path)
    record = read_run_json(path)
    try:
        info = DataInfo.from_dict(record["data"])
    except (KeyError, TypeError, ValueError):
        raise FathomError(f"{path / 'run.json'}: damaged (no readable 'data' entry)") from None
    if model is None:
        model = rebuild_model(path, record, config, info)
    weights = path / WEIGHTS_FILE
    if not weights.exists():
        weights = path / "checkpoints" / "last.safetensors"
    load_weights(weights, model)
    model.eval()
    return Run(path, config, info, model)


def rebuild_model(
    path: Path, record: dict[str, Any], config: FathomConfig, info: DataInfo
) -> nn.Module:
    """The run's network with fresh weights: replayed lineage, else built from the config."""
    described = record.get("model") or {}
    if not described.get("registered", True):
        raise ConfigError(
            f"{path} used a custom model ({config.model.name}); pass it: "
            "fathom.load(path, model=MyModel())"
        )
    if record.get("lineage") is not None:
        return replay(record["lineage"], where=str(path / "run.json"))
    return build_model(config, info)
