"""Small helpers shared by tests (import as ``tests_support``)."""

from __future__ import annotations

import torch
from torch import nn

from fathom.config import OptimConfig, TrainConfig
from fathom.data.loader import TensorLoader
from fathom.engine import Callback, Trainer
from fathom.tasks.classification import Classification


def trainer_for(bundle, callbacks=(), epochs: int = 2, **train) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(bundle.info.input_shape[0], 16), nn.ReLU(), nn.Linear(16, bundle.info.num_classes)
    )
    return Trainer(
        model,
        Classification(bundle.info.num_classes),
        TensorLoader(bundle.train, 16, shuffle=True),
        TensorLoader(bundle.val, 64),
        train=TrainConfig(epochs=epochs, **train),
        optim=OptimConfig(lr=0.01),
        callbacks=callbacks,
    )


class InterruptAt(Callback):
    """Stops the process like Ctrl-C right after step ``step`` (and after its checkpoint)."""

    order = 200  # after the Checkpointer

    def __init__(self, step: int) -> None:
        self.step = step

    def batch_end(self, trainer) -> None:
        if trainer.state.step == self.step:
            raise KeyboardInterrupt
