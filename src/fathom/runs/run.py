"""The ``Run`` object users get back from ``fit`` and ``load``: a model with its config, data
facts and run folder, and what can be done with it (evaluate, predict, generate, report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fathom.assemble import make_task
from fathom.config import FathomConfig
from fathom.data.bundle import DataBundle, DataInfo
from fathom.errors import FathomError
from fathom.runs.folder import read_run_json
from fathom.tasks import Task


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
        self._task: Task | None = None

    def __repr__(self) -> str:
        return f"Run({self.path}, model={self.config.model.name}, data={self.info.name})"

    @property
    def task(self) -> Task:
        """The run's task (built once from its config and data facts)."""
        if self._task is None:
            self._task = make_task(self.config, self.info)
        return self._task

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
        from fathom.runs.actions import evaluate_run

        return evaluate_run(self, split)

    def predict(
        self,
        inputs: torch.Tensor | list[str | Path] | None = None,
        *,
        texts: list[str] | None = None,
    ) -> torch.Tensor:
        """Probabilities (classification) or values (regression) for tensors or input files, or,
        for a model trained on texts, for ``texts=["a great film", ...]``."""
        from fathom.runs.actions import predict_run

        return predict_run(self, inputs, texts)

    def predict_texts(self, texts: list[str], **options: Any) -> list[str]:
        """Texts in, texts out, for runs whose task reads text (seq2seq: ``beam_size=4``)."""
        self.model.eval()
        return self.task.predict_texts(self.model, list(texts), **options)

    def generate(self, output_dir: str | Path | None = None, **request: Any) -> dict[str, Any]:
        """Samples from a generative run (images, or text from a ``prompt``), written to files.

        ``request`` holds the task's options, e.g. ``n``, ``label``, ``steps``, ``seed`` for
        image models or ``prompt``, ``max_tokens``, ``temperature``, ``top_k``, ``top_p``.
        """
        from fathom.runs.actions import generate_run

        return generate_run(self, output_dir, **request)

    def report(self) -> Path:
        """Re-draw the plots and the HTML report; returns the path of report.html."""
        from fathom.report import write_report

        if self.path is None:
            raise FathomError("this run has no folder to report on")
        return write_report(self.path)
