"""Muon for the hidden weight matrices, AdamW for everything else, in one optimizer.

Muon (Keller Jordan et al., 2024) replaces each hidden matrix's momentum update by its nearest
semi-orthogonal matrix, found by five Newton-Schulz iterations, so every direction of the update
moves at the same rate. The input embedding, the output layer, norms and biases are not hidden
matrices and take AdamW steps. Updates are scaled to AdamW's RMS (PyTorch's ``match_rms_adamw``:
``0.2 * sqrt(max(rows, cols))``), so Muon's learning rate lives on AdamW's scale. Conv kernels are
treated as [out, in * kh * kw] matrices. Matrices of one shape are orthogonalised in one batch.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)  # quintic coefficients of Muon's reference code


def hidden_matrices(model: nn.Module) -> set[int]:
    """ids of the weights that take Muon steps: Linear/Conv weights except the input layer (the
    first one, where the model has no embedding), the output layer (the last one, or any layer
    under a ``head``) and weights shared with an embedding (tied output layers)."""
    layers = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
    ]
    embedded = {
        id(parameter)
        for module in model.modules()
        if isinstance(module, nn.Embedding)
        for parameter in module.parameters()
    }
    outer = {id(layers[-1][1].weight)} if layers else set()
    if layers and not embedded:
        outer.add(id(layers[0][1].weight))
    return {
        id(module.weight)
        for name, module in layers
        if id(module.weight) not in embedded | outer
        and not {"head", "lm_head"} & set(name.split("."))
    }


def muon_parameter_groups(
    parameters: Iterable[Any], hidden: set[int], muon_lr: float
) -> list[dict[str, Any]]:
    """Split ``parameters`` (tensors or groups) into Muon groups (hidden matrices) and AdamW ones."""
    groups = []
    for group in parameters:
        group = dict(group) if isinstance(group, dict) else {"params": [group]}
        params = list(group.pop("params"))
        matrices = [p for p in params if id(p) in hidden and p.dim() >= 2]
        others = [p for p in params if not (id(p) in hidden and p.dim() >= 2)]
        if others:
            groups.append({**group, "params": others, "muon": False})
        if matrices:
            groups.append({**group, "params": matrices, "muon": True, "lr": muon_lr})
    merged = _merge_same_options(groups)  # AdamW groups first: group 0 carries optim.lr
    return sorted(merged, key=lambda group: group["muon"])


def _merge_same_options(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One group per set of options (bare tensors each arrive as a group of their own)."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for group in groups:
        key = tuple(sorted((k, repr(v)) for k, v in group.items() if k != "params"))
        if key in merged:
            merged[key]["params"] += group["params"]
        else:
            merged[key] = {**group, "params": list(group["params"])}
    return list(merged.values())


class Muon(torch.optim.Optimizer):
    """Muon on groups flagged ``muon=True``, AdamW on the others; decoupled weight decay on both."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        *,
        momentum: float = 0.95,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        ns_steps: int = 5,
    ) -> None:
        defaults = {
            "lr": lr, "momentum": momentum, "betas": betas, "eps": eps,
            "weight_decay": weight_decay, "ns_steps": ns_steps, "muon": False,
        }  # fmt: skip
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if group["weight_decay"]:
                for parameter in params:
                    parameter.mul_(1.0 - group["lr"] * group["weight_decay"])
            if group["muon"]:
                self._muon_step(group, params)
            else:
                self._adamw_step(group, params)
        return loss

    def _muon_step(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        by_shape: dict[torch.Size, list[tuple[torch.Tensor, torch.Tensor]]] = defaultdict(list)
        for parameter in params:
            state = self.state[parameter]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(parameter)
            buffer = state["momentum_buffer"]
            buffer.lerp_(parameter.grad, 1.0 - group["momentum"])
            update = parameter.grad.lerp(buffer, group["momentum"])  # Nesterov
            by_shape[parameter.shape].append((parameter, update))
        for shape, pairs in by_shape.items():
            matrices = torch.stack([update.reshape(shape[0], -1) for _, update in pairs])
            orthogonal = orthogonalise(matrices, group["ns_steps"])
            scale = group["lr"] * 0.2 * math.sqrt(max(matrices.shape[-2:]))
            for (parameter, _), direction in zip(pairs, orthogonal, strict=True):
                parameter.add_(direction.view(shape).to(parameter.dtype), alpha=-scale)

    def _adamw_step(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        beta1, beta2 = group["betas"]
        for parameter in params:
            state = self.state[parameter]
            if not state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(parameter)
                state["exp_avg_sq"] = torch.zeros_like(parameter)
            state["step"] += 1
            step = float(state["step"])
            state["exp_avg"].lerp_(parameter.grad, 1.0 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(
                parameter.grad, parameter.grad, value=1 - beta2
            )
            denominator = (state["exp_avg_sq"] / (1.0 - beta2**step)).sqrt_().add_(group["eps"])
            parameter.addcdiv_(
                state["exp_avg"], denominator, value=-group["lr"] / (1.0 - beta1**step)
            )


def orthogonalise(matrices: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Approximate U V^T of each matrix U S V^T in a batch [n, rows, cols] (Newton-Schulz, bf16)."""
    a, b, c = NEWTON_SCHULZ
    values = matrices.bfloat16()
    tall = values.shape[-2] > values.shape[-1]
    if tall:
        values = values.mT
    values = values / values.norm(dim=(-2, -1), keepdim=True).clamp_min(1e-7)
    for _ in range(steps):
        gram = values @ values.mT
        values = a * values + torch.baddbmm(gram, gram, gram, beta=b, alpha=c) @ values
    return values.mT if tall else values
