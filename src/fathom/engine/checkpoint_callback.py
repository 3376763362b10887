"""The callback that writes checkpoints: periodically, at each epoch end, and the best epoch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fathom.engine.callbacks import Callback
from fathom.engine.checkpoint_files import non_finite, save_checkpoint
from fathom.errors import TrainingDiverged

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer


class Checkpointer(Callback):
    """Writes ``last.safetensors`` every ``every_steps`` batches (0: epoch ends only) and at
    every epoch end, and ``best.safetensors`` when the task's monitored metric improves.

    A checkpoint whose weights, buffers or optimizer state hold a NaN or an infinity is never
    written, so the file on disk stays the last good one. Buffers that already held an infinity
    when training started (a mask, by design) may keep it.

    ``directory=None``: a process that writes nothing but takes part in gathering each
    checkpoint's sharded state (FSDP's ranks other than 0), so the gather is never rank 0's alone."""

    order = 100  # after callbacks that change the state at the same event

    def __init__(self, directory: Path | None, every_steps: int = 0) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.every_steps = every_steps
        self.infinite_by_design: set[str] = set()

    def save(self, trainer: Trainer, name: str = "last") -> Path | None:
        trainer.check_finite()
        tensors, state = trainer.checkpoint_state()
        if self.directory is None:
            return None
        check_finite_tensors(trainer, tensors, self.infinite_by_design)
        path = self.directory / f"{name}.safetensors"
        save_checkpoint(path, tensors, state)
        return path

    def fit_start(self, trainer: Trainer) -> None:
        buffers = dict(trainer.model.named_buffers())
        self.infinite_by_design = set(non_finite(buffers, infinity_allowed=False)) - set(
            non_finite(buffers, infinity_allowed=True)
        )

    def batch_end(self, trainer: Trainer) -> None:
        if self.every_steps and trainer.state.step % self.every_steps == 0:
            self.save(trainer)

    def epoch_end(self, trainer: Trainer) -> None:
        self.save(trainer)
        if trainer.state.best_epoch == trainer.state.epoch:
            self.save(trainer, "best")

    def fit_end(self, trainer: Trainer) -> None:
        self.save(trainer)


def check_finite_tensors(
    trainer: Trainer, tensors: dict[str, torch.Tensor], infinite_by_design: set[str]
) -> None:
    """Stop with ``TrainingDiverged`` if a model, EMA or optimizer tensor of the checkpoint holds a
    NaN, or an infinity other than in the buffers named in ``infinite_by_design``."""
    strict, lenient = {}, {}
    for key, tensor in tensors.items():
        prefix, _, name = key.partition("/")
        if prefix in ("model", "ema") and name in infinite_by_design:
            lenient[key] = tensor
        elif prefix in ("model", "ema", "optimizer"):
            strict[key] = tensor
    bad = non_finite(strict) + non_finite(lenient, infinity_allowed=True)
    if bad:
        raise TrainingDiverged(
            f"training diverged: {len(bad)} of {len(strict) + len(lenient)} model and optimizer "
            f"tensors hold NaN or inf at step {trainer.state.step} (first: {bad[0]}); the last "
            "good checkpoint is kept. Try a lower optim.lr or set train.grad_clip_norm"
        )
