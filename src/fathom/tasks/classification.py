"""Classification: cross-entropy (with label smoothing and soft mixup targets), accuracy, top-k.

``tta`` (``task.tta: [flip, translate]``) scores evaluation and predictions on the average of
the softmax over test-time views of each batch (see ``fathom.data.tta``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fathom.data.bundle import DataBundle, DataInfo, Split, check_labels
from fathom.data.tta import check_tta, tta_views
from fathom.engine.callbacks import Callback
from fathom.engine.metrics import ClassificationMetrics
from fathom.errors import DataError
from fathom.tasks.base import Batch, Task, probe_outputs


def check_two_classes(info: DataInfo) -> None:
    """A DataError naming the file or folder when the data holds a single class: every model
    would score 100% by always answering it."""
    if info.num_classes != 1:
        return
    where = info.extra.get("path") or f"dataset '{info.name}'"
    only = (info.class_names or ["?"])[0]
    if info.target_name:
        found = f"column '{info.target_name}' holds one class, '{only}', in every row"
    elif info.name == "folder":
        found = f"one class subfolder, '{only}' (expected one subfolder of images per class)"
    else:
        found = f"one class, '{only}'"
    raise DataError(f"{where}: {found}; classification needs at least two classes")


class Classification(Task):
    name = "classification"
    monitor = "accuracy"
    monitor_mode = "max"
    is_classifier = True
    graph_predictions = True

    def __init__(
        self,
        num_classes: int,
        label_smoothing: float = 0.0,
        tta: Sequence[str] | None = (),
        tokenizer: dict[str, Any] | None = None,
    ) -> None:
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.tta = check_tta(tta)
        self.tokenizer = tokenizer  # text datasets: the run's tokenizer, to label attention maps

    @classmethod
    def for_data(
        cls, info: DataInfo, label_smoothing: float = 0.0, tta: Sequence[str] | None = ()
    ) -> Classification:
        check_two_classes(info)
        tokenizer = info.extra.get("tokenizer")
        return cls(int(info.num_classes or 0), label_smoothing, tta, tokenizer)

    def callbacks(self, run_dir: Path | None) -> list[Callback]:
        if self.tokenizer is None or run_dir is None:
            return []
        return [TextAttention(self.tokenizer, run_dir)]

    def check_data(self, bundle: DataBundle) -> None:
        """Every label is a class index below ``num_classes``, in every split held in memory."""
        for name, split in bundle.splits().items():
            if isinstance(split, Split):
                check_labels(split.targets, self.num_classes, f"{bundle.info.name} {name} split")

    def check_batch(self, model: nn.Module, batch: Batch) -> None:
        outputs = probe_outputs(model, batch[0])
        if outputs.dim() != 2 or outputs.shape[1] != self.num_classes:
            raise DataError(
                f"the model outputs shape {list(outputs.shape)} but the dataset has "
                f"{self.num_classes} classes: expected [batch, {self.num_classes}]"
            )

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, targets = batch
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        hard_targets = targets.argmax(dim=1) if targets.is_floating_point() else targets
        accuracy = (logits.detach().argmax(dim=1) == hard_targets).float().mean()
        return loss, {"accuracy": accuracy}

    def new_metrics(self, device: torch.device) -> ClassificationMetrics:
        return ClassificationMetrics(self.num_classes, device)

    def evaluation_step(
        self, model: nn.Module, batch: Batch, metrics: ClassificationMetrics
    ) -> None:
        inputs, targets = batch
        if self.tta:
            log_probabilities = self.tta_probabilities(model, inputs).clamp_min(1e-30).log()
            loss_sum = F.nll_loss(log_probabilities, targets, reduction="sum")
            metrics.update(log_probabilities, targets, loss_sum)
            return
        logits = model(inputs).float()
        loss_sum = F.cross_entropy(logits, targets, reduction="sum")
        metrics.update(logits, targets, loss_sum)

    def tta_probabilities(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """The softmax averaged over the test-time views of ``inputs`` (weights sum to 1)."""
        total = None
        for view, weight in tta_views(inputs, self.tta):
            probabilities = model(view).float().softmax(dim=1) * weight
            total = probabilities if total is None else total + probabilities
        return total

    def predict(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        if self.tta:
            return self.tta_probabilities(model, inputs)
        return model(inputs).float().softmax(dim=1)

    def prediction_columns(self) -> list[str]:
        return ["prediction", "probability"]

    def describe_prediction(
        self, output: torch.Tensor, info: DataInfo, top: int = 1
    ) -> tuple[str, list[str]]:
        """The ``top`` classes with their probabilities; CSV cells: best class, its probability."""
        names = info.class_names or [str(index) for index in range(len(output))]
        best = output.topk(min(top, len(output)))
        pairs = zip(best.values, best.indices, strict=True)
        shown = ", ".join(f"{names[int(i)]} {float(p):.3f}" for p, i in pairs)
        return shown, [names[int(best.indices[0])], f"{float(best.values[0]):.6f}"]


class TextAttention(Callback):
    """At the end of a text classification run: the attention map of a validation sentence."""

    MAX_TOKENS = 32

    def __init__(self, tokenizer: dict[str, Any], run_dir: Path) -> None:
        self.tokenizer, self.run_dir = tokenizer, run_dir

    def fit_end(self, trainer: Any) -> None:
        from fathom.data.tokenizers import PAD_ID, token_label, tokenizer_from_dict
        from fathom.report.attention import save_attention_section

        model = trainer.model
        validation = trainer.validation_inputs(1)
        if not hasattr(model, "attention_maps") or validation is None or not len(validation):
            return
        tokens = validation[0][validation[0] != PAD_ID][: self.MAX_TOKENS]
        if not len(tokens):
            return
        tokenizer = tokenizer_from_dict(self.tokenizer)
        labels = [token_label(tokenizer, token) for token in tokens.tolist()]
        inputs = tokens.unsqueeze(0).to(trainer.device)
        save_attention_section(
            self.run_dir, model, inputs, labels, "Last layer's attention on a validation sentence",
            "Each panel is one head: row i shows how much token i attends to each token.",
        )  # fmt: skip
