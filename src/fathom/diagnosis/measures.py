"""What a diagnostics sample measures: activation, gradient and update statistics, run facts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from fathom.data.bundle import DataBundle
    from fathom.engine.trainer import Trainer

RELU_TYPES = (nn.ReLU, nn.ReLU6)
SATURATING = {nn.Sigmoid: (0.01, 0.99), nn.Tanh: (-0.99, 0.99), nn.Hardtanh: (-0.99, 0.99)}
TINY_RMS = 1e-2  # below this root-mean-square a parameter is 'about zero': no meaningful ratio


def first_tensor(output: Any) -> torch.Tensor | None:
    """A layer's output tensor: itself, or the first tensor of a tuple (``nn.LSTM``/``nn.GRU``)."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    return output if isinstance(output, torch.Tensor) else None


def _units_max(output: torch.Tensor) -> torch.Tensor:
    """Per-unit maximum over the batch (channels of images, features of vectors)."""
    if output.dim() == 4 or output.dim() == 2:
        return output.transpose(0, 1).reshape(output.shape[1], -1).amax(dim=1)
    return output.reshape(-1, output.shape[-1]).amax(dim=0)


def activation_statistics(module: nn.Module, output: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean and std of a layer's output, plus dead or saturated fractions for activations."""
    values = output.detach().float()
    stats = {"mean": values.mean(), "std": values.std() if values.numel() > 1 else values.sum() * 0}
    if isinstance(module, RELU_TYPES) and values.dim() >= 2:
        stats["dead"] = (_units_max(values) <= 0).float().mean()
    for kind, (low, high) in SATURATING.items():
        if isinstance(module, kind):
            stats["saturated"] = ((values <= low) | (values >= high)).float().mean()
    return stats


def update_statistics(
    before: list[torch.Tensor], after: list[torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Weight norm and update-to-weight ratio of one layer's parameters. Tensors whose values are
    about zero (a bias or a norm's shift initialised at zero) are left out of the ratio: any
    update is infinitely large next to them, which says nothing about the learning rate."""
    weights = torch.stack([p.float().norm() for p in before])
    sizes = torch.tensor([max(1, p.numel()) for p in before], device=weights.device)
    changes = torch.stack(
        [(a.float() - b.float()).norm() for a, b in zip(after, before, strict=True)]
    )
    meaningful = weights / sizes.sqrt() >= TINY_RMS
    stats = {"weight_norm": weights.norm()}
    if bool(meaningful.any()):
        kept = meaningful.float()
        stats["update_ratio"] = (changes * kept).norm() / (weights * kept).norm()
    return stats


def run_facts(
    trainer: Trainer, bundle: DataBundle | None, run_dir: Path | None = None
) -> dict[str, Any]:
    """What the remedies must know about the run: settings in force, the model's options, and
    whether ``optim.lr=auto`` chose the rate (run.json's ``lr_finder``: not proposed again)."""
    optimizer = next(iter(trainer.optimizers.values()))
    group = optimizer.param_groups[0]
    spec = getattr(trainer.model, "fathom_spec", None)
    config = trainer.config
    return {
        "kind": "run",
        "step": trainer.state.step,
        "lr": float(group.get("lr", 0.0)),
        "base_lr": float(group.get("initial_lr", group.get("lr", 0.0))),  # optim.lr
        "weight_decay": float(group.get("weight_decay", 0.0) or 0.0),
        "optimizer": type(optimizer).__name__.lower(),
        "optimizers": len(trainer.optimizers),
        "grad_clip_norm": getattr(trainer.clipper, "max_norm", None),
        "epochs": trainer.epochs,
        "max_steps": config.max_steps,
        "label_smoothing": getattr(config, "label_smoothing", None),
        "early_stopping": config.early_stopping is not None,
        "validation": trainer.val_loader is not None,
        "model": _jsonable(spec) if isinstance(spec, dict) else None,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "lr_from_finder": run_dir is not None and _chose_rate(run_dir),
    }


def _chose_rate(run_dir: Path) -> bool:
    record = run_dir / "run.json"
    return record.exists() and "lr_finder" in json.loads(record.read_text())


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    simple = (str, int, float, bool, type(None))
    return {
        key: value
        for key, value in options.items()
        if isinstance(value, simple)
        or (isinstance(value, (list, tuple)) and all(isinstance(v, simple) for v in value))
    }


def weighted_leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name or "model", module)
        for name, module in model.named_modules()
        if next(module.children(), None) is None
        and any(p.requires_grad for p in module.parameters(recurse=False))
    ]


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """A sharded parameter or gradient (FSDP's DTensor) gathered whole; any other tensor as it
    is. Gathering is a collective: under FSDP every rank samples the same steps."""
    gather = getattr(tensor, "full_tensor", None)
    return gather() if callable(gather) else tensor
