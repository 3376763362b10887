"""Client splits of a dataset's training examples: IID, pathological shards, Dirichlet label skew.

Each split is a list of index tensors, one per client, drawn from a generator seeded by the
run's seed, so the same (kind, clients, alpha, seed) always gives the same split; it is saved
with the run (``clients.safetensors``) and each client is handed only its own indices."""

from __future__ import annotations

import torch

from fathom.errors import ConfigError, closest

SPLITS = ("iid", "shards", "dirichlet")


def check_split(kind: str, clients: int, alpha: float, examples: int) -> None:
    """One-line errors for an unknown split, alpha <= 0 or more clients than examples."""
    if kind not in SPLITS:
        raise ConfigError(
            f"federated.split: unknown split '{kind}'{closest(kind, SPLITS) or ''} "
            f"(choose from {', '.join(SPLITS)})"
        )
    if not alpha > 0:
        raise ConfigError(f"federated.alpha must be > 0, got {alpha}")
    if clients < 1:
        raise ConfigError(f"federated.clients must be at least 1, got {clients}")
    needed = 2 * clients if kind == "shards" else clients
    if needed > examples:
        raise ConfigError(
            f"federated.clients={clients}: a '{kind}' split needs {needed} training examples, "
            f"the data has {examples}"
        )


def split_clients(
    targets: torch.Tensor, clients: int, kind: str, *, alpha: float = 0.5, seed: int = 0
) -> list[torch.Tensor]:
    """The training indices of each client (sorted), as ``kind`` splits them."""
    check_split(kind, clients, alpha, len(targets))
    generator = torch.Generator().manual_seed(seed * 7_919 + clients)
    if kind == "iid":
        parts = list(torch.randperm(len(targets), generator=generator).tensor_split(clients))
    elif kind == "shards":
        parts = shard_split(targets, clients, generator)
    else:
        parts = dirichlet_split(targets, clients, alpha, generator)
    return [part.sort().values for part in parts]


def shard_split(
    targets: torch.Tensor, clients: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """McMahan et al.'s pathological non-IID split: sort by label, cut 2 shards per client,
    deal the shards at random (most clients then hold two classes)."""
    by_label = torch.sort(targets.long(), stable=True).indices
    shards = by_label.tensor_split(2 * clients)
    dealt = torch.randperm(2 * clients, generator=generator).tolist()
    return [torch.cat([shards[dealt[2 * c]], shards[dealt[2 * c + 1]]]) for c in range(clients)]


def dirichlet_split(
    targets: torch.Tensor, clients: int, alpha: float, generator: torch.Generator
) -> list[torch.Tensor]:
    """Label skew: each class is divided among the clients in Dirichlet(alpha) proportions
    (Hsu et al. 2019); every client is then given at least one example."""
    labels = targets.long()
    concentration = torch.full((clients,), float(alpha))
    owned: list[list[torch.Tensor]] = [[] for _ in range(clients)]
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        gamma = torch._standard_gamma(concentration.unsqueeze(0), generator=generator)[0]
        cuts = (gamma / gamma.sum()).cumsum(0) * len(members)
        bounds = [0, *cuts.round().long().tolist()[:-1], len(members)]
        for client in range(clients):
            owned[client].append(members[bounds[client] : bounds[client + 1]])
    parts = [torch.cat(pieces) for pieces in owned]
    return ensure_nonempty(parts)


def ensure_nonempty(parts: list[torch.Tensor]) -> list[torch.Tensor]:
    """Move one example from the largest client to each empty one (deterministically)."""
    for client, part in enumerate(parts):
        if len(part) == 0:
            largest = max(range(len(parts)), key=lambda index: len(parts[index]))
            parts[client], parts[largest] = parts[largest][-1:], parts[largest][:-1]
    return parts


def class_histogram(
    targets: torch.Tensor, parts: list[torch.Tensor], classes: int
) -> list[list[int]]:
    """Examples of each class held by each client: ``[client][class]``."""
    return [torch.bincount(targets[part].long(), minlength=classes).tolist() for part in parts]
