"""Contrastive tuning of a pretrained backbone on pairs of labelled examples (SetFit, Tunstall
et al. 2022), before its head trains: with few labels the frozen features of a general-purpose
encoder separate topics better than the classes asked for (MiniLM on the sentiment sentences:
73% with 8 labels a class), and a few steps that pull same-class pairs together and push other
pairs apart fix that (81%, ``bench/transfer.py``).

Each step embeds a batch of labelled examples with the backbone (``features`` of the model
contract, in train mode) and takes every pair in the batch at once: the cosine similarity of
a pair is pulled to 1 for the same class and to 0 otherwise (SetFit's cosine-similarity loss).
A batch of B examples gives B(B-1)/2 pairs for B forward passes, where SetFit's sampled pairs
cost two passes each. Written here because SetFit itself needs sentence-transformers and
transformers, which Fathom's models do not use.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from fathom.data.bundle import Split
from fathom.errors import ConfigError


def pair_loss(embeddings: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared gap between each pair's cosine similarity and 1 (same class) or 0."""
    unit = nn.functional.normalize(embeddings.float(), dim=1)
    similarity = unit @ unit.T
    same = (targets[:, None] == targets[None, :]).float()
    first, second = torch.triu_indices(len(targets), len(targets), offset=1, device=unit.device)
    return (similarity[first, second] - same[first, second]).pow(2).mean()


def tune_on_pairs(
    features: nn.Module,
    train: Split,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> dict[str, Any]:
    """``steps`` AdamW steps of ``pair_loss`` on seeded batches of ``train``; what happened."""
    if train.targets.dim() != 1 or train.targets.is_floating_point():
        raise ConfigError("transfer.contrastive_steps needs class labels (a classifier's data)")
    if len(train) < 2:
        raise ConfigError("transfer.contrastive_steps needs at least 2 labelled examples")
    trainable = [p for p in features.parameters() if p.requires_grad]
    if not trainable:
        raise ConfigError("transfer.contrastive_steps: the backbone has no trainable parameters")
    was_training = features.training
    features.to(device).train()
    optimizer = torch.optim.AdamW(trainable, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    size = min(len(train), max(2, batch_size))  # examples a step (a pair needs two)
    started, losses = time.perf_counter(), []
    for _ in range(steps):
        chosen = torch.randperm(len(train), generator=generator)[:size]
        loss = pair_loss(
            features(train.inputs[chosen].to(device)), train.targets[chosen].to(device)
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    features.train(was_training)
    return {"steps": steps, "lr": lr, "batch_size": size,
            "first_loss": round(losses[0], 4) if losses else None,
            "last_loss": round(losses[-1], 4) if losses else None,
            "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
