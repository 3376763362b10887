"""Checkpoints: tensors in safetensors, everything else as JSON in its metadata. Never pickle.

The metadata holds a sha256 of every tensor's bytes, so a truncated or altered file is refused,
and files are written atomically, so the last good checkpoint survives a crash at any moment.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from fathom.errors import CheckpointError
from fathom.files import atomic_write_bytes

FORMAT = "fathom-checkpoint"
VERSION = 1


def payload_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key]
        digest.update(key.encode())
        digest.update(str(tensor.dtype).encode() + str(list(tensor.shape)).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]
) -> None:
    """Atomically write ``tensors`` and JSON ``state`` to ``path``."""
    prepared = {
        key: value.detach().to("cpu").contiguous().clone() for key, value in tensors.items()
    }
    header = {"format": FORMAT, "version": VERSION, "payload_sha256": payload_digest(prepared)}
    metadata = {"fathom": json.dumps(header), "state": json.dumps(state, default=_json_default)}
    atomic_write_bytes(path, safetensors_bytes(prepared, metadata=metadata))


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint; any problem is one ``CheckpointError`` line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            metadata = file.metadata() or {}
            tensors = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{path}: unreadable checkpoint, truncated or not safetensors ({error})"
        ) from None
    try:
        header = json.loads(metadata["fathom"])
        state = json.loads(metadata["state"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: not a Fathom checkpoint (no Fathom metadata)") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a Fathom checkpoint (format {header.get('format')!r})")
    if header.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: written by a newer Fathom (version {header['version']})")
    if payload_digest(tensors) != header.get("payload_sha256"):
        raise CheckpointError(
            f"{path}: checkpoint contents do not match their checksum (altered or corrupt)"
        )
    return tensors, state


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{key}": value for key, value in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {key[start:]: value for key, value in tensors.items() if key.startswith(prefix + "/")}


def split_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer ``state_dict`` as (tensors, JSON): per-parameter tensors go to safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}/{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def join_optimizer_state(tensors: dict[str, torch.Tensor], saved: dict[str, Any]) -> dict[str, Any]:
    per_parameter: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, _, name = key.partition("/")
        per_parameter.setdefault(int(index), {})[name] = value
    for index, values in saved["scalars"].items():
        per_parameter.setdefault(int(index), {}).update(values)
    return {"state": per_parameter, "param_groups": saved["param_groups"]}


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All random-number-generator states: torch (CPU and CUDA) as tensors, numpy/python as JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda/{index}"] = state
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    python_version, python_state, python_gauss = random.getstate()
    saved = {
        "numpy": [kind, keys.tolist(), position, has_gauss, gauss],
        "python": [python_version, list(python_state), python_gauss],
    }
    return tensors, saved


def restore_rng(tensors: dict[str, torch.Tensor], saved: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda_states = [tensors[key] for key in sorted(tensors) if key.startswith("cuda/")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    kind, keys, position, has_gauss, gauss = saved["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
    python_version, python_state, python_gauss = saved["python"]
    random.setstate((python_version, tuple(python_state), python_gauss))
