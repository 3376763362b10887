"""A run folder on disk, and the ``Run`` object users get back from ``fit`` and ``load``.

Layout: config.yaml, run.json, metrics.jsonl, model.safetensors, checkpoints/{last,best}.safetensors,
evaluation-<split>.json, plots/*.png, report.html.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from fathom.config import FathomConfig, validate_config
from fathom.data.bundle import DataBundle, DataInfo
from fathom.engine.checkpoint import load_checkpoint, prefixed, save_checkpoint, unprefixed
from fathom.errors import CheckpointError, ConfigError, FathomError
from fathom.io import atomic_write_json, atomic_write_text


def versions() -> dict[str, str]:
    import numpy

    from fathom._version import __version__

    return {
        "fathom": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_revision() -> str | None:
    """The git commit of the Fathom source tree, when it is a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def new_run_dir(config: FathomConfig) -> Path:
    """A fresh folder under ``run.dir`` named after ``run.name`` or dataset-model-time."""
    root = Path(config.run.dir)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = config.run.name or f"{config.data.name}-{config.model.name}-{stamp}"
    candidate, counter = root / base, 1
    while candidate.exists():
        counter += 1
        candidate = root / f"{base}-{counter}"
    (candidate / "checkpoints").mkdir(parents=True)
    return candidate


def read_run_json(path: Path) -> dict[str, Any]:
    file = Path(path) / "run.json"
    if not file.is_file():
        raise FathomError(f"{path} is not a Fathom run folder (no run.json)")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise FathomError(f"{file}: corrupt run.json") from None


def update_run_json(path: Path, **values: Any) -> dict[str, Any]:
    file = Path(path) / "run.json"
    current = json.loads(file.read_text(encoding="utf-8")) if file.exists() else {}
    current.update(values)
    atomic_write_json(file, current)
    return current


def write_config(path: Path, config: FathomConfig) -> None:
    atomic_write_text(Path(path) / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))


def read_config(path: Path) -> FathomConfig:
    file = Path(path) / "config.yaml"
    if not file.is_file():
        raise FathomError(f"{path} is not a Fathom run folder (no config.yaml)")
    return validate_config(yaml.safe_load(file.read_text(encoding="utf-8")) or {})


def save_weights(path: Path, model: nn.Module, model_name: str) -> None:
    save_checkpoint(
        path, prefixed("model", model.state_dict()), {"kind": "weights", "model": model_name}
    )


def load_weights(path: Path, model: nn.Module) -> nn.Module:
    tensors, _ = load_checkpoint(path)
    weights = unprefixed("model", tensors)
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit this model ({first})") from None
    return model


class Run:
    """A trained model with its config, data facts and run folder."""

    def __init__(
        self,
        path: Path | None,
        config: FathomConfig,
        info: DataInfo,
        model: nn.Module,
        data: DataBundle | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.config = config
        self.info = info
        self.model = model
        self.data = data

    def __repr__(self) -> str:
        return f"Run({self.path}, model={self.config.model.name}, data={self.info.name})"

    @property
    def task(self) -> Any:
        from fathom.api import make_task

        return make_task(self.config, self.info)

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Every record of metrics.jsonl."""
        file = self.path / "metrics.jsonl" if self.path else None
        if file is None or not file.exists():
            return []
        return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]

    @property
    def summary(self) -> dict[str, Any]:
        return read_run_json(self.path) if self.path else {}

    def evaluate(self, split: str = "test") -> dict[str, Any]:
        """Metrics on a split (written to evaluation-<split>.json in the run folder)."""
        from fathom.run_actions import evaluate_run

        return evaluate_run(self, split)

    def predict(self, inputs: torch.Tensor | list[str | Path]) -> torch.Tensor:
        """Probabilities (classification) or values (regression) for tensors or input files."""
        from fathom.run_actions import predict_run

        return predict_run(self, inputs)

    def generate(self, output_dir: str | Path | None = None, **request: Any) -> dict[str, Any]:
        """Samples from a generative run (images, or text from a ``prompt``), written to files.

        ``request`` holds the task's options, e.g. ``n``, ``label``, ``steps``, ``seed`` for
        image models or ``prompt``, ``max_tokens``, ``temperature``, ``top_k``, ``top_p``.
        """
        from fathom.run_actions import generate_run

        return generate_run(self, output_dir, **request)

    def report(self) -> Path:
        """Re-draw the plots and the HTML report; returns the path of report.html."""
        from fathom.report import write_report

        if self.path is None:
            raise FathomError("this run has no folder to report on")
        return write_report(self.path)


def load(path: str | Path, model: nn.Module | None = None) -> Run:
    """Load a finished (or interrupted) run: its config, data facts and trained weights.

    Models built from the registry are rebuilt by name; for your own module pass ``model=``.
    """
    from fathom.api import build_model

    path = Path(path)
    config = read_config(path)
    record = read_run_json(path)
    info = DataInfo.from_dict(record["data"])
    if model is None:
        if not record.get("model", {}).get("registered", True):
            raise ConfigError(
                f"{path} used a custom model ({config.model.name}); pass it: fathom.load(path, model=MyModel())"
            )
        model = build_model(config, info)
    weights = path / "model.safetensors"
    if not weights.exists():
        weights = path / "checkpoints" / "last.safetensors"
    load_weights(weights, model)
    model.eval()
    return Run(path, config, info, model)
