"""The steps of ``fathom compress``: distil into a student, prune (then fine-tune), quantize.

Each takes the current model and returns the next one with its lineage recorded; fine-tuning is
short and uses the run's own recipe (optimizer, schedule, augmentation) with fewer epochs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from fathom.assemble import build_model, build_trainer, seed_everything
from fathom.compression.pruning import (
    hold_zeros,
    plan_channel_pruning,
    release_zeros,
    sparsity,
)
from fathom.compression.qat import quantization_aware_finetune
from fathom.config import FathomConfig, merge_layer, parse_overrides, validate_config
from fathom.data.bundle import DataBundle, Split
from fathom.errors import ConfigError
from fathom.export.checks import reads_tokens
from fathom.runs import apply_transform
from fathom.runs.run import Run
from fathom.tasks.distillation import Distillation


def short_config(config: FathomConfig, epochs: int, **train_values: Any) -> FathomConfig:
    """The run's recipe for ``epochs`` epochs, no weight EMA, no early stopping (and any other
    ``train`` values given)."""
    if epochs < 1:
        raise ConfigError(f"fine-tuning epochs must be at least 1, got {epochs}")
    train = config.train.model_copy(
        update={"epochs": int(epochs), "ema_decay": None, "early_stopping": None, **train_values}
    )
    return config.model_copy(update={"train": train})


def train_model(
    config: FathomConfig, model: nn.Module, bundle: DataBundle, task: Any = None
) -> nn.Module:
    """Train ``model`` in memory (no run folder) with ``config``; returns it in eval mode."""
    model.requires_grad_(True)  # a run's EMA-averaged model comes back frozen
    seed_everything(config.train.seed)
    trainer = build_trainer(config, model, bundle, None, task=task)
    trainer.fit()
    return trainer.model.eval()


STUDENT_SECTIONS = ("train.", "optim.", "schedule.", "data.augment.")
STUDENT_KEYS = ("data.augment", "data.batch_size")
"""What ``--distill-set`` may change: how the student trains, not the teacher's data or model."""


def student_config(
    config: FathomConfig, name: str, options: dict[str, Any], overrides: Sequence[str] = ()
) -> FathomConfig:
    """The teacher's config with the model replaced by the student ``name`` with ``options``,
    and ``overrides`` (``data.augment={}``, ``optim.lr=0.05``; checked by
    ``check_student_overrides`` when the plan is) applied to how the student trains."""
    raw = merge_layer(config.to_dict(), parse_overrides(list(overrides)))
    raw["model"] = {"name": name, **options}
    return validate_config(raw)


def check_student_overrides(overrides: Sequence[str]) -> None:
    """Only how the student trains may change: a ConfigError naming the first other key."""
    for item in overrides:
        key = item.partition("=")[0]
        if key == "train.epochs":
            raise ConfigError("--distill-set train.epochs: give --distill-epochs instead")
        if key not in STUDENT_KEYS and not key.startswith(STUDENT_SECTIONS):
            allowed = "train.*, optim.*, schedule.*, data.augment, data.batch_size"
            raise ConfigError(
                f"--distill-set {key}: only how the student trains may change ({allowed}); "
                "the student's model options go in --student"
            )


def label_smoothing_note(teacher: Run) -> str | None:
    """Label-smoothed teachers pass on less (Müller et al., 2019): a 2x300 MLP distilled from the
    MNIST recipe's CNN reached 98.95% from a teacher trained with label smoothing 0.1 and 99.27%
    from one trained without (bench/results/compression-distillation-variants.json)."""
    smoothing = teacher.config.train.label_smoothing
    if not smoothing:
        return None
    return (
        f"the teacher was trained with train.label_smoothing={smoothing:g}, which flattens the "
        "soft targets a student learns from; for distillation retrain it with "
        "train.label_smoothing=0"
    )


def distill(
    teacher: Run,
    student_name: str,
    student_options: dict[str, Any],
    epochs: int,
    temperature: float = 4.0,
    alpha: float = 0.9,
    overrides: Sequence[str] = (),
) -> tuple[nn.Module, FathomConfig]:
    """Train a fresh ``student_name`` on the teacher's data from its soft targets and labels."""
    if not teacher.task.is_classifier:
        raise ConfigError(f"distillation needs a classification teacher, not {teacher.task.name}")
    chosen = student_config(teacher.config, student_name, student_options, overrides)
    config = short_config(chosen, epochs)
    seed_everything(config.train.seed)
    student = build_model(config, teacher.info)
    frozen = copy.deepcopy(teacher.model).eval()
    task = Distillation.for_data(teacher.info, teacher=frozen, temperature=temperature, alpha=alpha)
    return train_model(config, student, teacher.data, task), config


def quantization_aware(
    model: nn.Module, config: FathomConfig, bundle: DataBundle, epochs: int, mode: str
) -> tuple[nn.Module, dict[str, Any]]:
    """``epochs`` of the run's recipe with int8 simulated (in fp32: the simulation is of int8,
    not of bf16), before ONNX Runtime quantizes the result."""
    short = short_config(config, epochs, precision="fp32")
    trained, details = quantization_aware_finetune(
        model, mode, lambda working: train_model(short, working, bundle)
    )
    return trained, {**details, "qat_epochs": epochs}


def prune_unstructured(
    model: nn.Module, config: FathomConfig, bundle: DataBundle, amount: float, scope: str,
    epochs: int,
) -> tuple[nn.Module, dict[str, Any]]:  # fmt: skip
    """Magnitude pruning (recorded), fine-tuned with the zeros held, then made permanent."""
    pruned = apply_transform(model, "prune_magnitude", amount=amount, scope=scope)
    if epochs:
        hold_zeros(pruned)
        train_model(short_config(config, epochs), pruned, bundle)
        release_zeros(pruned)
    return pruned.eval(), {"sparsity": sparsity(pruned), "scope": scope}


def prune_structured(
    model: nn.Module, config: FathomConfig, bundle: DataBundle, amount: float, epochs: int
) -> tuple[nn.Module, dict[str, Any]]:
    """Torch-Pruning channel removal (recorded per step as kept shapes' removed indices)."""
    shape = list(bundle.info.input_shape or [])
    if not shape or not _reads_floats(model, shape):
        raise ConfigError("structured pruning needs a model of float inputs (images, tables)")
    planned = copy.deepcopy(model)
    steps = plan_channel_pruning(planned, amount, shape)
    pruned = apply_transform(model, "prune_channels", input_shape=shape, steps=steps)
    pruned.load_state_dict(planned.state_dict())  # same shapes: the replayed plan fits
    if epochs:
        train_model(short_config(config, epochs), pruned, bundle)
    return pruned.eval(), {"groups_pruned": len(steps)}


def _reads_floats(model: nn.Module, shape: list[int]) -> bool:
    first = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    return first is None and all(isinstance(side, int) for side in shape)


def calibration_batches(bundle: DataBundle, count: int = 8, size: int = 64) -> list[torch.Tensor]:
    """``count`` batches of training inputs for static quantization's calibration pass."""
    generator = torch.Generator().manual_seed(0)
    total = len(bundle.train)
    order = torch.randperm(total, generator=generator)[: count * size].tolist()
    train = bundle.train
    if isinstance(train, Split):
        inputs = train.inputs[order]
    else:  # a split read lazily (image folders)
        inputs = torch.stack([train[index][0] for index in order])
    if not reads_tokens(bundle.info):  # token ids stay integers
        inputs = inputs.float()
    return [batch for batch in inputs.split(size) if len(batch)]
