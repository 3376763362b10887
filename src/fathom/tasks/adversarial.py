"""Adversarial training: classification trained on attacked batches.

``task.name=adversarial task.method=pgd task.eps=0.3 task.steps=7`` is PGD adversarial training
(Madry et al. 2018): every batch is replaced by its PGD adversarial version before the loss.
``task.method=fgsm`` is fast adversarial training (Wong et al. 2020, "Fast is better than
free"): one FGSM step of 1.25 ε from a uniform random start. ε is in pixel units ([0, 1]); the
run's normalisation maps it to the model's inputs. Random starts draw from the torch global
generator, which checkpoints save, so a resumed run continues exactly. ``task.eps_warmup_epochs``
ramps ε (and the step) linearly from 0 over that many epochs of updates: PGD training at MNIST's
ε = 0.3 can stall at chance from its first batch (seed 2 of mnist-robust's PGD-10 training did,
at loss 2.30 for three epochs), and a ramp lets the network learn before the attack is at full
strength. Evaluation and predictions are those of ``classification`` (clean accuracy);
``fathom attack RUN`` measures robust accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from fathom.config import call_with_checked_kwargs
from fathom.data.bundle import DataInfo
from fathom.engine.callbacks import Callback
from fathom.errors import ConfigError
from fathom.tasks.attacks import AttackSpec, PixelSpace, attack
from fathom.tasks.base import Batch
from fathom.tasks.classification import Classification

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer

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
        eps_warmup_epochs: float = 0.0,
        label_smoothing: float = 0.0,
        tta: Sequence[str] | None = (),
    ) -> None:
        super().__init__(num_classes, label_smoothing, tta)
        if not 0.0 <= eps_warmup_epochs <= 1e6:
            raise ConfigError(
                f"task.eps_warmup_epochs must be in [0, 1e6], got {eps_warmup_epochs}"
            )
        self.eps_warmup_epochs = float(eps_warmup_epochs)
        self.ramp = 1.0  # the share of ε in force; EpsilonRamp sets it before each batch
        if method not in METHODS:
            raise ConfigError(f"task.method must be pgd or fgsm, got '{method}'")
        if not 0.0 <= clean_fraction <= 1.0:
            raise ConfigError(f"task.clean_fraction must be in [0, 1], got {clean_fraction}")
        self.normalization = normalization
        self.clean_fraction = clean_fraction
        if method == "fgsm":  # Wong et al.: uniform start, one step of 1.25 ε
            # Their gradient is taken at the start as drawn, outside [0, 1] where it falls there;
            # clamped first, MNIST's black background keeps only half of the start's noise:
            # mnist-robust v2 PGD-50x10 71.0 / 62.8 / 82.8% over seeds 0-2, unclamped 81.0 / 80.8 /
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

    def callbacks(self, run_dir: Path | None) -> list[Callback]:
        ramp = [EpsilonRamp(self)] if self.eps_warmup_epochs > 0 else []
        return [*super().callbacks(run_dir), *ramp]

    def training_loss(
        self, phase: str, model: nn.Module, batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, targets = batch
        labels = targets.argmax(dim=1) if targets.is_floating_point() else targets
        space = PixelSpace(self.normalization, inputs.dim())
        spec = self.spec
        if self.ramp < 1.0:
            spec = replace(spec, eps=spec.eps * self.ramp, step_size=spec.alpha * self.ramp)
        adversarial = attack(model, inputs, labels, spec, space).to(inputs.dtype)
        logits = model(adversarial)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        if self.clean_fraction > 0:
            clean = F.cross_entropy(model(inputs), targets, label_smoothing=self.label_smoothing)
            loss = (1 - self.clean_fraction) * loss + self.clean_fraction * clean
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        return loss, {"adversarial_accuracy": accuracy}


class EpsilonRamp(Callback):
    """Before each batch, the share of ε in force: linear from 0 to 1 over
    ``task.eps_warmup_epochs`` epochs of optimizer updates. The clock is the trainer's update
    count, which checkpoints save, so a resumed run ramps as an uninterrupted one."""

    def __init__(self, task: AdversarialClassification) -> None:
        self.task = task

    def batch_start(self, trainer: Trainer) -> None:
        warmup = self.task.eps_warmup_epochs * trainer.schedule.steps_per_epoch
        self.task.ramp = min(1.0, trainer.state.optimizer_steps / warmup)

    def fit_end(self, trainer: Trainer) -> None:
        self.task.ramp = 1.0
