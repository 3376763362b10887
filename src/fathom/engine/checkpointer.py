"""The callback that writes checkpoints: periodically, at each epoch end, and the best epoch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fathom.engine.callbacks import Callback
from fathom.engine.checkpoint import save_checkpoint

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer


class Checkpointer(Callback):
    """Writes ``last.safetensors`` every ``every_steps`` batches (0: epoch ends only) and at
    every epoch end, and ``best.safetensors`` when the task's monitored metric improves."""

    order = 100  # after callbacks that change the state at the same event

    def __init__(self, directory: Path, every_steps: int = 0) -> None:
        self.directory = Path(directory)
        self.every_steps = every_steps

    def save(self, trainer: Trainer, name: str = "last") -> Path:
        trainer.check_finite()
        tensors, state = trainer.checkpoint_state()
        path = self.directory / f"{name}.safetensors"
        save_checkpoint(path, tensors, state)
        return path

    def batch_end(self, trainer: Trainer) -> None:
        if self.every_steps and trainer.state.step % self.every_steps == 0:
            self.save(trainer)

    def epoch_end(self, trainer: Trainer) -> None:
        self.save(trainer)
        if trainer.state.best_epoch == trainer.state.epoch:
            self.save(trainer, "best")

    def fit_end(self, trainer: Trainer) -> None:
        self.save(trainer)
