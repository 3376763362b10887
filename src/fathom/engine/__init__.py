"""The training engine: loop, callbacks, optimizers and schedules, checkpoints, metrics."""

from fathom.engine.callbacks import EVENTS, Callback, EarlyStopping, StopTraining
from fathom.engine.checkpoint_callback import Checkpointer
from fathom.engine.checkpoint_files import load_checkpoint, save_checkpoint
from fathom.engine.state import TrainState
from fathom.engine.trainer import Trainer, evaluate

__all__ = [
    "EVENTS",
    "Callback",
    "Checkpointer",
    "EarlyStopping",
    "StopTraining",
    "TrainState",
    "Trainer",
    "load_checkpoint",
    "evaluate",
    "save_checkpoint",
]
