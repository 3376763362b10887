"""Adversarial training: classification trained on attacked batches.

``task.name=adversarial task.method=pgd task.eps=0.3 task.steps=7`` is PGD adversarial training
(Madry et al. 2018): every batch is replaced by its PGD adversarial version before the loss.
``task.method=fgsm`` is fast adversarial training (Wong et al. 2020, "Fast is better than
free"): one FGSM step of 1.25 ε from a uniform random start. ε is in pixel units ([0, 1]); the
run's normalisation maps it to the model's inputs. Random starts draw from the torch global
generator, which checkpoints save, so a resumed run continues exactly. Evaluation and
predictions are those of ``classification`` (clean accuracy); ``fathom attack RUN`` measures
robust accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fathom.config import call_with_checked_kwargs
from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError
from fathom.tasks.attacks import AttackSpec, PixelSpace, attack
from fathom.tasks.base import Batch
from fathom.tasks.classification import Classification

METHODS = ("pgd", "fgsm")


class AdversarialClassification(Classification):
    name = "adversarial"

    def __init__(
        self,
        num_classes: int,
        normalization: dict[str, list[float]] | None = None,
        method: str = "pgd",
        eps: float = 0.3,
        steps: int = 7,
        step_size: float | None = None,
        norm: str = "linf",
        clean_fraction: float = 0.0,
        label_smoothing: float = 0.0,
        tta: Sequence[str] | None = (),
    ) -> None:
        super().__init__(num_classes, label_smoothing, tta)
        if method not in METHODS:
            raise ConfigError(f"task.method must be pgd or fgsm, got '{method}'")
        if not 0.0 <= clean_fraction <= 1.0:
            raise ConfigError(f"task.clean_fraction must be in [0, 1], got {clean_fraction}")
        self.normalization = normalization
        self.clean_fraction = clean_fraction
        if method == "fgsm":  # Wong et al.: uniform start, one step of 1.25 ε
            # Their gradient is taken at the start as drawn, outside [0, 1] where it falls there;
            # clamped first, MNIST's black background keeps only half of the start's noise:
            # mnist-robust PGD-50x10 71.0 / 62.8 / 82.8% over seeds 0-2, unclamped 81.0 / 80.8 /
            # 81.2% (bench/results/robustness-fgsm-start.json).
            self.spec = AttackSpec("pgd", eps, norm, 1, step_size or 1.25 * eps, clamp_start=False)
        else:
            self.spec = AttackSpec("pgd", eps, norm, steps, step_size or 2.5 * eps / steps)

    @classmethod
    def for_data(  # type: ignore[override]
        cls, info: DataInfo, **options: object
    ) -> AdversarialClassification:
        if info.task != "classification":
            raise ConfigError(f"task 'adversarial' needs a classification dataset, not {info.task}")
        sizes = {"num_classes": int(info.num_classes or 0), "normalization": info.normalization}
        return call_with_checked_kwargs(cls, {**sizes, **options}, where="task adversarial")

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, targets = batch
        labels = targets.argmax(dim=1) if targets.is_floating_point() else targets
        space = PixelSpace(self.normalization, inputs.dim())
        adversarial = attack(model, inputs, labels, self.spec, space).to(inputs.dtype)
        logits = model(adversarial)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        if self.clean_fraction > 0:
            clean = F.cross_entropy(model(inputs), targets, label_smoothing=self.label_smoothing)
            loss = (1 - self.clean_fraction) * loss + self.clean_fraction * clean
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        return loss, {"adversarial_accuracy": accuracy}
