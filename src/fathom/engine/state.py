"""Everything about a run's progress that a checkpoint must restore, as plain JSON-able values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # batches processed
    optimizer_steps: int = 0
    samples_seen: int = 0
    elapsed_seconds: float = 0.0  # training time before this session (for max_seconds)
    best_metric: float | None = None
    best_epoch: int | None = None
    metrics_lines: int = 0  # lines of metrics.jsonl written up to this state
    stop_reason: str | None = None
    stopped_by_callback: bool = False  # early stopping & co: a resumed run trains no more
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per evaluation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> TrainState:
        """The state from ``to_dict``; keys of older versions that moved elsewhere are ignored
        (early stopping's counters now live in the callback's own state)."""
        known = {item.name for item in fields(cls)}
        return cls(**{key: item for key, item in value.items() if key in known})
