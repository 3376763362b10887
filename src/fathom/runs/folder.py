"""The run-folder format: what files a run holds and how they are read and written.

Layout: config.yaml, run.json, metrics.jsonl, diagnostics.jsonl, model.safetensors,
checkpoints/{last,best}.safetensors, evaluation-<split>.json, plots/*.png, sections/*.json,
report.html. run.json carries a sha256 of its own content and of config.yaml, so an altered or
damaged file is refused in one line (folders written before these checksums are read as they
are). Every write is atomic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from fathom.config import FathomConfig, validate_config
from fathom.engine.checkpoint import load_checkpoint, prefixed, save_checkpoint, unprefixed
from fathom.errors import CheckpointError, ConfigError, FathomError
from fathom.files import atomic_write_json, atomic_write_text

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"


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
    if Path(base).name != base or base in (".", "..") or len(base.encode()) > 200:
        raise ConfigError(
            f"run.name '{base[:60]}' must be a plain folder name (no '/', '..', at most 200 bytes)"
        )
    candidate, counter = root / base, 1
    while candidate.exists():
        counter += 1
        candidate = root / f"{base}-{counter}"
    (candidate / "checkpoints").mkdir(parents=True)
    return candidate


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FathomError(f"{file}: damaged (not UTF-8 text)") from None
    except OSError as error:
        raise FathomError(f"{file}: cannot be read ({error.strerror})") from None


def read_run_json(path: Path) -> dict[str, Any]:
    """run.json of a run folder, checked against its own sha256 where it has one."""
    file = Path(path) / RUN_FILE
    if not file.is_file():
        raise FathomError(f"{path} is not a Fathom run folder (no run.json)")
    try:
        record = json.loads(_read_text(file))
    except json.JSONDecodeError:
        raise FathomError(f"{file}: corrupt run.json (not valid JSON)") from None
    if not isinstance(record, dict):
        raise FathomError(f"{file}: corrupt run.json (not a JSON object)")
    stored = record.pop("sha256", None)
    if stored is not None and stored != _digest(record):
        raise FathomError(f"{file}: contents do not match their checksum (altered or damaged)")
    return record


def update_run_json(path: Path, **values: Any) -> dict[str, Any]:
    """Set keys of run.json (creating it), re-computing its checksum."""
    file = Path(path) / RUN_FILE
    current = read_run_json(path) if file.exists() else {}
    current.update(values)
    atomic_write_json(file, {**current, "sha256": _digest(current)})
    return current


def write_config(path: Path, config: FathomConfig) -> None:
    """config.yaml, and its sha256 in run.json."""
    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    atomic_write_text(Path(path) / CONFIG_FILE, text)
    update_run_json(path, config_sha256=hashlib.sha256(text.encode()).hexdigest())


def read_config(path: Path) -> FathomConfig:
    """The resolved config a run was trained with, checked against run.json's checksum."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise FathomError(f"{path} is not a Fathom run folder (no config.yaml)")
    text = _read_text(file)
    expected = (
        read_run_json(path).get("config_sha256") if (Path(path) / RUN_FILE).exists() else None
    )
    if expected is not None and hashlib.sha256(text.encode()).hexdigest() != expected:
        raise FathomError(f"{file}: contents do not match run.json's checksum (altered or damaged)")
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        raise FathomError(f"{file}: damaged (not valid YAML)") from None
    if not raw:
        raise FathomError(f"{file}: empty; the run's config is lost")
    try:
        return validate_config(raw)
    except ConfigError as error:
        raise FathomError(f"{file}: {error}") from None


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
