"""Progress: a live bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from fathom.engine.callbacks import Callback

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer


def _format(values: dict[str, Any], keys: tuple[str, ...]) -> str:
    parts = []
    for key in keys:
        value = values.get(key)
        if isinstance(value, float):
            parts.append(f"{key} {value:.4f}")
    return "  ".join(parts)


class ProgressLog(Callback):
    """One line per log interval and per evaluation, to ``stream`` (for logs, CI, pipes)."""

    order = 200

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.shown = 0
        self.started = 0.0

    def fit_start(self, trainer: Trainer) -> None:
        self.started = time.perf_counter()
        self.shown = len(trainer.log.records)

    def _flush(self, trainer: Trainer) -> None:
        for record in trainer.log.records[self.shown :]:
            epoch = f"epoch {record['epoch']:.2f}/{trainer.epochs}"
            if record["kind"] == "train":
                done = trainer.state.step / max(1, trainer.epochs * len(trainer.train_loader))
                elapsed = time.perf_counter() - self.started
                eta = elapsed / max(done, 1e-9) * (1 - done) if done > 0 else 0.0
                speed = f"{record.get('samples_per_second', 0):.0f} samples/s"
                line = f"{epoch} step {record['step']}  {_format(record, ('loss', 'accuracy', 'mae'))}  lr {record['lr']:.2e}  {speed}  eta {eta:.0f}s"
            else:
                line = f"{epoch} validation  {_format(record, ('loss', 'accuracy', 'top5_accuracy', 'knn_accuracy', 'mae', 'rmse', 'r2'))}"
            print(line, file=self.stream, flush=True)
        self.shown = len(trainer.log.records)

    def batch_end(self, trainer: Trainer) -> None:
        if len(trainer.log.records) > self.shown:
            self._flush(trainer)

    def epoch_end(self, trainer: Trainer) -> None:
        self._flush(trainer)

    def fit_end(self, trainer: Trainer) -> None:
        self._flush(trainer)


class ProgressBar(Callback):
    """A rich progress bar: epoch, step, loss, metric, samples/s and ETA, updated each log interval."""

    order = 200

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task_id: Any = None
        self.shown = 0

    def fit_start(self, trainer: Trainer) -> None:
        total = trainer.epochs * len(trainer.train_loader)
        self.progress.start()
        self.task_id = self.progress.add_task(
            "train",
            total=total,
            completed=trainer.state.step,
            epoch=f"{trainer.state.epoch + 1}/{trainer.epochs}",
            status="",
        )
        self.shown = len(trainer.log.records)

    def batch_end(self, trainer: Trainer) -> None:
        status = None
        for record in trainer.log.records[self.shown :]:
            if record["kind"] == "train":
                status = f"loss {record['loss']:.4f}  {_format(record, ('accuracy', 'mae'))}  {record.get('samples_per_second', 0):.0f} samples/s"
        self.shown = len(trainer.log.records)
        fields = {"status": status} if status else {}
        self.progress.update(
            self.task_id,
            completed=trainer.state.step,
            epoch=f"{trainer.state.epoch + 1}/{trainer.epochs}",
            **fields,
        )

    def evaluation_end(self, trainer: Trainer) -> None:
        values = trainer.last_evaluation
        if values:
            self.progress.console.print(
                f"epoch {trainer.state.epoch}/{trainer.epochs} validation  {_format(values, ('loss', 'accuracy', 'top5_accuracy', 'knn_accuracy', 'mae', 'rmse', 'r2'))}"
            )
        self.shown = len(trainer.log.records)

    def fit_end(self, trainer: Trainer) -> None:
        self.progress.update(self.task_id, completed=trainer.state.step)
        self.progress.stop()


def make_progress(mode: str) -> Callback | None:
    """``auto`` shows a bar on a terminal and log lines otherwise; ``none`` shows nothing."""
    if mode == "none":
        return None
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        return ProgressBar()
    return ProgressLog()
