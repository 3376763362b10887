"""The run's metric records: kept in memory and, for runs on disk, appended to metrics.jsonl."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends one JSON object per line and flushes it, so a killed run keeps what it logged."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        clean = {key: _finite_or_none(value) for key, value in record.items()}
        self.records.append(clean)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(json.dumps(clean) + "\n")

    def truncate(self, count: int) -> None:
        """Keep the first ``count`` records (used on resume to drop lines past the checkpoint)."""
        if self.path is not None and self.path.exists():
            lines = self.path.read_text(encoding="utf-8").splitlines()[:count]
            self.records = [json.loads(line) for line in lines]
            from fathom.files import atomic_write_text

            atomic_write_text(self.path, "".join(line + "\n" for line in lines))
        else:
            self.records = self.records[:count]


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
