"""A task owns the maths of a kind of learning: its losses, metrics and predictions.

``Task`` adds to the trainer's interface (``fathom.engine.task.TrainingTask``) what the rest of
Fathom asks of a task: how it is built for a dataset, the callbacks it adds, how it checks data,
predicts and presents predictions. Tasks that sample (GANs, VAEs, diffusion, language models)
are ``GenerativeTask``s; tasks that map texts to texts (seq2seq) set ``reads_text``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fathom.engine.task import Batch, Metrics, TrainingTask
from fathom.errors import ConfigError

if TYPE_CHECKING:
    from fathom.data.bundle import DataBundle, DataInfo
    from fathom.engine.callbacks import Callback

__all__ = ["Batch", "GenerativeTask", "Metrics", "Task", "probe_outputs"]


@torch.no_grad()
def probe_outputs(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The model's outputs for two examples in eval mode, restoring its previous mode."""
    was_training = model.training
    model.eval()
    outputs = model(inputs[:2])
    model.train(was_training)
    return outputs


class Task(TrainingTask):
    """Base class for tasks. ``is_classifier``: predictions are class probabilities (what
    attacks, calibration and classifier-based sample quality need)."""

    is_classifier = False
    reads_text = False  # True: predictions take texts and give texts (``predict_texts``)
    graph_predictions = (
        False  # True: ``predict`` is one forward pass of a tensor batch (exportable)
    )

    @classmethod
    def for_data(cls, info: DataInfo, **options: Any) -> Task:
        """Build the task for a dataset; subclasses take sizes (classes, vocabulary) from ``info``."""
        return cls(**options)

    def callbacks(self, run_dir: Path | None) -> list[Callback]:
        """Extra callbacks this task adds to training, e.g. sample grids saved to RUN/plots."""
        return []

    def check_data(self, bundle: DataBundle) -> None:
        """Called before training with the whole dataset: raise a FathomError if it cannot work."""

    def attach_data(self, bundle: DataBundle) -> None:
        """Called with the run's data before evaluating a trained run (a kNN memory bank)."""

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Outputs for users: probabilities for classification, values for regression."""
        return model(inputs)

    def prediction_columns(self) -> list[str]:
        """The columns ``describe_prediction`` fills (the CSV header after ``input``)."""
        return ["prediction"]

    def describe_prediction(
        self, output: torch.Tensor, info: DataInfo, top: int = 1
    ) -> tuple[str, list[str]]:
        """One prediction as human text and as CSV cells (one per ``prediction_columns``)."""
        values = [f"{float(value):.6g}" for value in output.reshape(-1)]
        return ", ".join(values), [" ".join(values)]

    def predict_texts(self, model: nn.Module, texts: list[str], **options: Any) -> list[str]:
        """Texts in, texts out, for tasks with ``reads_text`` (seq2seq)."""
        raise ConfigError(f"a {self.name} run does not take texts to predict")


class GenerativeTask(Task):
    """A task whose model samples: images (GAN, VAE, diffusion) or text (language models)."""

    def generate(
        self, model: nn.Module, info: DataInfo, output_dir: Path, **request: Any
    ) -> dict[str, Any]:
        """Sample from the model and write the results under ``output_dir``.

        Returns a summary for the user: ``{"files": [paths], "text": str | None, ...}``.
        """
        raise NotImplementedError
