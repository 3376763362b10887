"""Checkpoints: tensors in safetensors, everything else as JSON in its metadata. Never pickle.

The metadata holds a sha256 of every tensor's bytes and of the JSON state, so a truncated or
altered file is refused; files are written atomically, so the last good checkpoint survives a
crash at any moment; and equal contents give equal bytes, so a file's hash identifies them.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as safetensors_bytes

from fathom.errors import CheckpointError
from fathom.files import atomic_write_bytes

FORMAT = "fathom-checkpoint"
VERSION = 2  # 1: the checksum ("payload_sha256") covered the tensors only, not the JSON state


def payload_digest(
    tensors: dict[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> str:
    """sha256 of every tensor (name, dtype, shape, bytes) and of every ``metadata`` entry.

    Without ``metadata`` it is version 1's tensor-only digest, byte for byte."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key]
        digest.update(key.encode())
        digest.update(str(tensor.dtype).encode() + str(list(tensor.shape)).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    for key in sorted(metadata or {}):
        value = metadata[key].encode()  # type: ignore[index]
        digest.update(f"\0{key}\0{len(value)}\0".encode() + value)
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]
) -> None:
    """Atomically write ``tensors`` and JSON ``state`` to ``path``, in deterministic bytes."""
    prepared = {
        key: value.detach().to("cpu").contiguous().clone() for key, value in tensors.items()
    }
    state_text = json.dumps(state, default=_json_default, sort_keys=True)
    checksum = payload_digest(prepared, {"state": state_text})
    header = {"format": FORMAT, "version": VERSION, "sha256": checksum}
    metadata = {"fathom": json.dumps(header, sort_keys=True), "state": state_text}
    atomic_write_bytes(path, _canonical(safetensors_bytes(prepared, metadata=metadata)))


def _canonical(payload: bytes) -> bytes:
    """The safetensors file with its JSON header's keys sorted.

    safetensors writes the metadata in hash-map order, which changes from one process to the
    next; sorted, equal tensors and state give equal files."""
    length = int.from_bytes(payload[:8], "little")
    header = json.loads(payload[8 : 8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the tensor data 8-byte aligned, as safetensors does
    return len(text).to_bytes(8, "little") + text + payload[8 + length :]


def non_finite(tensors: Mapping[str, torch.Tensor], infinity_allowed: bool = False) -> list[str]:
    """Names of the floating-point tensors that hold a NaN (or an infinity, unless allowed)."""
    test = torch.isnan if infinity_allowed else (lambda tensor: ~torch.isfinite(tensor))
    return [
        name
        for name, tensor in tensors.items()
        if tensor.is_floating_point() and bool(test(tensor).any())
    ]


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint; any problem is one ``CheckpointError`` line naming the file.

    The file is read once, whole: safetensors' ``safe_open`` opens it again by name for the
    tensors, so a checkpoint replaced meanwhile (training writes them) gave a torn read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"{path}: unreadable checkpoint ({error})") from None
    return checkpoint_from_bytes(data, path)


def checkpoint_from_bytes(
    data: bytes, name: str | Path
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``load_checkpoint`` of a file's bytes read earlier (``name``: the file, for errors)."""
    try:
        tensors = load_safetensors(data)
        length = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + length]).get("__metadata__") or {}
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{name}: unreadable checkpoint, truncated or not safetensors ({error})"
        ) from None
    return _verified(Path(name), tensors, metadata)


def _verified(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and JSON state of a checkpoint whose header and checksum hold."""
    header = _header(path, metadata)
    if not _checksum_matches(header, tensors, metadata):
        raise CheckpointError(
            f"{path}: checkpoint contents do not match their checksum (altered or corrupt)"
        )
    try:
        state = json.loads(metadata["state"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: not a Fathom checkpoint (no training state)") from None
    return tensors, state


def _header(path: Path, metadata: dict[str, str]) -> dict[str, Any]:
    """The checkpoint's "fathom" header, checked for format and version."""
    try:
        header = json.loads(metadata["fathom"])
    except (KeyError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a Fathom checkpoint (no Fathom metadata)")
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a Fathom checkpoint (format {header.get('format')!r})")
    version = header.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise CheckpointError(f"{path}: not a Fathom checkpoint (version {version!r})")
    if version > VERSION:
        raise CheckpointError(f"{path}: written by a newer Fathom (version {version})")
    return header


def _checksum_matches(
    header: dict[str, Any], tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> bool:
    if header.get("version", 0) < 2:  # version 1: the tensors only
        return payload_digest(tensors) == header.get("payload_sha256")
    covered = {key: value for key, value in metadata.items() if key != "fathom"}
    return payload_digest(tensors, covered) == header.get("sha256")


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
