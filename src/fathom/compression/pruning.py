"""Pruning transforms: unstructured magnitude pruning and structured channel pruning.

``prune_magnitude`` zeroes the smallest weights of every Conv/Linear layer (``torch.nn.utils.prune``,
global or per layer) and makes it permanent: shapes do not change, the saved weights carry the
zeros. ``prune_channels`` replays a list of channel removals planned by Torch-Pruning
(``plan_channel_pruning``): each step names its root layer, the dimension and the removed
indices, and Torch-Pruning's dependency graph removes the coupled channels of every layer tied
to it (batch norms, the next layer's inputs, residual additions), so replay on a fresh base
recreates the same shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from fathom.errors import ConfigError

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Linear)


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, module) for name, module in model.named_modules() if isinstance(module, PRUNABLE)
    ]


def check_amount(amount: float) -> float:
    if not 0.0 < float(amount) < 1.0:
        raise ConfigError(f"pruning amount must be between 0 and 1 (exclusive), got {amount}")
    return float(amount)


def prune_magnitude(model: nn.Module, amount: float, scope: str = "global") -> nn.Module:
    """Zero the ``amount`` fraction of smallest-magnitude Conv/Linear weights, permanently.

    ``scope``: ``global`` ranks all those weights together; ``layer`` prunes each layer alike.
    """
    check_amount(amount)
    if scope not in ("global", "layer"):
        raise ConfigError(f"pruning scope must be 'global' or 'layer', got '{scope}'")
    targets = [(module, "weight") for _, module in prunable_layers(model)]
    if not targets:
        raise ConfigError("the model has no Conv or Linear layer to prune")
    if scope == "global":
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    else:
        for module, name in targets:
            prune.l1_unstructured(module, name, amount=amount)
    for module, name in targets:
        prune.remove(module, name)  # permanent: plain weights holding the zeros
    return model


def hold_zeros(model: nn.Module) -> None:
    """Keep the current zeros of every Conv/Linear weight at zero while fine-tuning."""
    for _, module in prunable_layers(model):
        prune.custom_from_mask(module, "weight", module.weight.detach() != 0)


def release_zeros(model: nn.Module) -> None:
    """Undo ``hold_zeros``: plain weight tensors again (with their zeros)."""
    for _, module in prunable_layers(model):
        if prune.is_pruned(module):
            prune.remove(module, "weight")


def sparsity(model: nn.Module) -> float:
    """The fraction of zero weights over all Conv/Linear layers."""
    total = zeros = 0
    for _, module in prunable_layers(model):
        total += module.weight.numel()
        zeros += int((module.weight == 0).sum())
    return zeros / total if total else 0.0


def classifier_layer(model: nn.Module) -> nn.Module:
    """The last Linear layer: its outputs are the classes and are never pruned."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ConfigError("structured pruning needs a model ending in a Linear layer")
    return linears[-1]


def example_input(input_shape: Sequence[int]) -> torch.Tensor:
    return torch.randn(1, *[int(side) for side in input_shape])


def plan_channel_pruning(
    model: nn.Module, amount: float, input_shape: Sequence[int], global_pruning: bool = False
) -> list[dict[str, Any]]:
    """Remove ``amount`` of the channels of every prunable group (L2 magnitude, Torch-Pruning's
    ``MetaPruner``) from ``model`` in place; returns the steps ``prune_channels`` replays."""
    import torch_pruning as tp

    check_amount(amount)
    model.requires_grad_(
        True
    )  # the dependency graph is traced through autograd (EMA models: frozen)
    names = {module: name for name, module in model.named_modules()}
    pruner = tp.pruner.MetaPruner(
        model, example_input(input_shape), importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=amount, global_pruning=global_pruning,
        ignored_layers=[classifier_layer(model)],
    )  # fmt: skip
    steps = []
    for group in pruner.step(interactive=True):
        dependency, indices = group[0]
        dimension = "out" if pruner.DG.is_out_channel_pruning_fn(dependency.handler) else "in"
        steps.append(
            {
                "layer": names[dependency.target.module],
                "dimension": dimension,
                "pruned": sorted(int(index) for index in indices),
            }
        )
        group.prune()
    return steps


def prune_channels(
    model: nn.Module, input_shape: list[int], steps: list[dict[str, Any]]
) -> nn.Module:
    """Replay structured pruning steps (from ``plan_channel_pruning``) on ``model``."""
    import torch_pruning as tp

    if not steps:
        return model
    model.requires_grad_(True)  # the dependency graph is traced through autograd
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input(input_shape))
    for step in steps:
        try:
            module = model.get_submodule(step["layer"])
        except AttributeError:
            raise ConfigError(f"prune_channels: the model has no layer '{step['layer']}'") from None
        pruner = graph.get_pruner_of_module(module)
        function = (
            pruner.prune_out_channels if step["dimension"] == "out" else pruner.prune_in_channels
        )
        graph.get_pruning_group(module, function, idxs=list(step["pruned"])).prune()
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def multiply_accumulates(
    model: nn.Module, input_shape: Sequence[int], example: torch.Tensor | None = None
) -> int:
    """Multiply-accumulates of one example's forward pass (Torch-Pruning's counter), on
    ``example`` (token ids for a text model) or standard normals of ``input_shape``."""
    import torch_pruning as tp

    was_training = model.training
    model.eval()
    example = example if example is not None else example_input(input_shape)
    macs, _ = tp.utils.count_ops_and_params(model, example)
    model.train(was_training)
    return int(macs)
