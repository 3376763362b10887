"""The model a server runs: a run (PyTorch or ONNX Runtime) or an exported ONNX file.

``ServedModel.predict`` takes a batch already read and normalised exactly as ``fathom predict``
reads files (fathom.serving.inputs) and returns probabilities (classifiers) or values.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError, FathomError
from fathom.export.checks import check_exportable, reads_tokens
from fathom.export.onnx import export_onnx, onnx_session, read_metadata, run_session
from fathom.files import sha256_file

BACKENDS = ("torch", "onnxruntime")


@dataclass
class ServedModel:
    """What a server needs of a model: its data facts, identity and a batch predictor."""

    info: DataInfo
    task: str
    classifier: bool  # predictions are class probabilities (the task's is_classifier)
    run_name: str
    sha256: str
    backend: str
    predict: Callable[[np.ndarray], np.ndarray]
    _statistics: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def normalization_arrays(self, ndim: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The run's float32 mean and std shaped to broadcast over a batch of ``ndim``
        dimensions (channels on axis 1), made once; None without normalisation."""
        normalization = self.info.normalization
        if not normalization:
            return None
        if ndim not in self._statistics:
            shape = [1, len(normalization["mean"]), *([1] * (ndim - 2))]
            self._statistics[ndim] = (
                np.asarray(normalization["mean"], dtype=np.float32).reshape(shape),
                np.asarray(normalization["std"], dtype=np.float32).reshape(shape),
            )
        return self._statistics[ndim]

    @property
    def tokens(self) -> bool:
        """Whether inputs are token ids (a text classifier) rather than floats."""
        return reads_tokens(self.info)

    def describe(self) -> dict[str, Any]:
        """The public facts the page and clients read from ``GET /info``."""
        shape = list(self.info.input_shape)
        kind = "text" if self.tokens else "image" if len(shape) == 3 else "array"
        return {
            "run": self.run_name,
            "sha256": self.sha256,
            "backend": self.backend,
            "task": self.task,
            "input_kind": kind,
            "input_shape": shape,
            "class_names": self.class_names(),
        }

    def class_names(self) -> list[str] | None:
        if not self.classifier:
            return None
        count = self.info.num_classes or 0
        return list(self.info.class_names or [str(index) for index in range(count)])


def load_served_model(target: str | Path, backend: str | None = None) -> ServedModel:
    """A run folder (backend torch by default, or onnxruntime) or an ONNX file (onnxruntime)."""
    path = Path(target)
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise ConfigError(f"{path}: an ONNX file runs on --backend onnxruntime only")
        if not path.is_file():
            raise FathomError(f"ONNX file not found: {path}")
        return onnx_model(path)
    from fathom.runs import load

    run = load(path)
    check_exportable(run, "safetensors")  # classification and regression runs only
    if backend == "onnxruntime":
        with tempfile.TemporaryDirectory(prefix="fathom-serve-") as scratch:
            exported = Path(scratch) / "model.onnx"
            export_onnx(run, exported, dynamic_batch=True)
            return onnx_model(exported, run_weights_sha256(path))
    return torch_model(run, run_weights_sha256(path))


def run_weights_sha256(path: Path) -> str:
    weights = path / "model.safetensors"
    if not weights.exists():
        weights = path / "checkpoints" / "last.safetensors"
    return sha256_file(weights)


def torch_model(run: Any, sha256: str) -> ServedModel:
    """PyTorch eager, through the run's task (probabilities exactly as ``fathom predict``)."""
    model, task = run.model.eval(), run.task

    @torch.inference_mode()
    def predict(batch: np.ndarray) -> np.ndarray:
        return task.predict(model, torch.from_numpy(batch)).float().numpy()

    return ServedModel(
        run.info, task.name, task.is_classifier, run.path.name, sha256, "torch", predict
    )


def onnx_model(path: Path, sha256: str | None = None) -> ServedModel:
    """ONNX Runtime on a file written by ``fathom export`` (its metadata holds the data facts);
    classifiers' logits become probabilities with a softmax, as the classification task does."""
    metadata = read_metadata(path)
    if "info" not in metadata:
        raise FathomError(f"{path}: no Fathom metadata (export it with 'fathom export RUN')")
    try:
        info = DataInfo.from_dict(json.loads(metadata["info"]))
    except (ValueError, TypeError, KeyError):
        raise FathomError(f"{path}: damaged Fathom metadata") from None
    session = onnx_session(path)
    classifier = metadata.get("classifier") == "true"

    def predict(batch: np.ndarray) -> np.ndarray:
        outputs = run_session(session, batch).astype(np.float32)
        if not classifier:
            return outputs
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    run_name = metadata.get("run") or path.stem
    digest = sha256 or sha256_file(path)
    return ServedModel(
        info, metadata.get("task", ""), classifier, run_name, digest, "onnxruntime", predict
    )
