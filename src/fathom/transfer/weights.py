"""Weights from a source into a model: matched by name and shape, with a one-line report.

``start_from(source, model, info)`` gives the network a fine-tuning run starts from: a run's
model is rebuilt from its lineage and takes the run's weights; a pretrained model takes the
package's weights by name. The head is reset to the new data's classes when they differ
(``reset_head``), and the start itself is recorded in the lineage as ``init_from`` (the source
and the sha256 of its weights), so the fine-tuned run keeps its provenance and still loads
with ``fathom.load``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from fathom.data.bundle import DataInfo
from fathom.engine.checkpoint_files import load_checkpoint, unprefixed
from fathom.errors import CheckpointError
from fathom.runs import apply_transform, replay
from fathom.transfer.sources import Source

SKIPPED_NAMES = ("embeddings.position_ids",)  # a buffer of Hugging Face BERTs, not a weight


@dataclass
class LoadReport:
    """What a name-and-shape match loaded, and what it left."""

    loaded: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)  # in the source, not in the model
    mismatched: list[str] = field(default_factory=list)  # same name, other shape
    fresh: list[str] = field(default_factory=list)  # in the model, not loaded

    def line(self, source: str) -> str:
        """One line: how many tensors loaded, and the names of those that did not."""
        total = len(self.loaded) + len(self.mismatched) + len(self.fresh)
        parts = [f"init_from {source}: loaded {len(self.loaded)} of {total} tensors"]
        for label, names in (
            ("other shape", self.mismatched),
            ("kept fresh", self.fresh),
            ("unused from the source", self.unused),
        ):
            if names:
                shown = ", ".join(names[:4]) + (
                    f" (+{len(names) - 4} more)" if len(names) > 4 else ""
                )
                parts.append(f"{label}: {shown}")
        return "; ".join(parts)


def load_matching(
    model: nn.Module, tensors: dict[str, torch.Tensor], prefix: str = ""
) -> LoadReport:
    """Copy into ``model`` every tensor of ``tensors`` whose name (after ``prefix``) and shape
    match a parameter or buffer of the model; report the rest."""
    report = LoadReport()
    state = model.state_dict()
    matched = {}
    for name, tensor in tensors.items():
        if name in SKIPPED_NAMES:
            continue
        target = prefix + name
        if target not in state:
            report.unused.append(name)
        elif tuple(state[target].shape) != tuple(tensor.shape):
            report.mismatched.append(target)
        else:
            matched[target] = tensor.to(dtype=state[target].dtype)
            report.loaded.append(target)
    report.fresh = [n for n in state if n not in matched and n not in report.mismatched]
    model.load_state_dict(matched, strict=False)
    return report


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def init_from(model: nn.Module, source: str, sha256: str) -> nn.Module:
    """The lineage's record of where a model's starting weights came from. Replaying it changes
    no shape (the run's own weights are loaded afterwards); it keeps the provenance."""
    return model


def read_source_tensors(source: Source) -> dict[str, torch.Tensor]:
    """The source's weights as named tensors (a run's model, or a package's safetensors)."""
    try:
        if source.run is not None:
            tensors, _ = load_checkpoint(source.weights)
            return unprefixed("model", tensors)
        return load_file(str(source.weights))
    except (OSError, RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{source.weights}: cannot read the weights ({first})") from None


def start_from(source: Source, model: nn.Module, info: DataInfo) -> tuple[nn.Module, str]:
    """The network a run from ``source`` starts with, and the one-line load report.

    ``model`` is the network built from the config (used as is for pretrained sources); a run
    source is rebuilt from its own lineage instead, so pruned or reset models come back whole.
    """
    source.check_data(info)
    if source.run is not None:
        model = replay(source.lineage, where=str(source.run / "run.json"))
    report = load_matching(model, read_source_tensors(source), source.prefix)
    if source.run is not None and (report.mismatched or report.fresh):
        raise CheckpointError(
            f"{source.name}: its weights do not fit its own model ({report.line(source.name)})"
        )
    line = report.line(source.name)
    model = apply_transform(
        model, "init_from", source=source.name, sha256=file_sha256(source.weights)
    )
    wanted = info.num_classes
    current = getattr(model, "num_classes", None)
    if wanted and current is not None and int(current) != int(wanted):
        model = apply_transform(model, "reset_head", num_classes=int(wanted))
        line += f"; head reset from {current} to {wanted} classes"
    return model, line
