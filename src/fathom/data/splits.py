"""Seeded train/validation/test splits and normalisation fitted on the training split only."""

from __future__ import annotations

import torch

from fathom.data.bundle import DataBundle, LazySplit, Split

STATISTICS_SAMPLE = 1000  # examples of a lazy split decoded to estimate normalisation statistics


def seeded_permutation(count: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(count, generator=generator)


def carve(
    split: Split | LazySplit, fraction: float, seed: int
) -> tuple[Split | LazySplit, Split | LazySplit | None]:
    """Split off ``fraction`` of ``split`` (seeded): returns (rest, carved)."""
    if fraction <= 0:
        return split, None
    order = seeded_permutation(len(split), seed)
    carved = max(1, int(round(len(split) * fraction)))
    return split.subset(order[carved:]), split.subset(order[:carved])


def finalize(
    bundle: DataBundle,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    normalize: bool,
    limit: int | None = None,
) -> DataBundle:
    """Add missing test/val splits (seeded), cap the training set, and normalise on train stats."""
    train, val, test = bundle.train, bundle.val, bundle.test
    if test is None:
        train, test = carve(train, test_fraction, seed)
    if val is None:
        train, val = carve(train, val_fraction, seed + 1)
    if limit is not None and limit < len(train):
        train = train.subset(seeded_permutation(len(train), seed + 2)[:limit])
    bundle = DataBundle(bundle.info, train, val, test)
    if bundle.info.normalization is not None:
        return bundle  # the dataset scaled itself (forecasting series: on their training part)
    if normalize and isinstance(train, Split) and train.inputs.is_floating_point():
        apply_normalization(bundle)
    elif normalize and not isinstance(train, Split):
        apply_lazy_normalization(bundle, seed)
    return bundle


def normalization_statistics(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean/std for images (N, C, ...) and per-column for tables (N, F)."""
    dims = [0, *range(2, inputs.dim())]
    values = inputs.double()
    mean = values.mean(dim=dims)
    std = values.std(dim=dims).clamp_min(1e-6)
    return mean.float(), std.float()


def normalize_inputs(inputs: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """Apply saved statistics to new inputs (predictions use this with the run's statistics)."""
    shape = [1, len(mean), *([1] * (inputs.dim() - 2))]
    mean_tensor = torch.tensor(mean, dtype=inputs.dtype).view(shape)
    std_tensor = torch.tensor(std, dtype=inputs.dtype).view(shape)
    return (inputs - mean_tensor) / std_tensor


def apply_normalization(bundle: DataBundle) -> None:
    mean, std = normalization_statistics(bundle.train.inputs)
    bundle.info.normalization = {"mean": mean.tolist(), "std": std.tolist()}
    for split in bundle.splits().values():
        split.inputs = normalize_inputs(split.inputs.float(), mean.tolist(), std.tolist())


def apply_lazy_normalization(bundle: DataBundle, seed: int) -> None:
    """Statistics from a seeded sample of training examples, applied as lazy splits decode."""
    train = bundle.train
    sample = seeded_permutation(len(train), seed)[:STATISTICS_SAMPLE]
    inputs = torch.stack([train[int(index)][0] for index in sample])
    mean, std = normalization_statistics(inputs)
    bundle.info.normalization = {"mean": mean.tolist(), "std": std.tolist()}
    for split in bundle.splits().values():
        split.normalization = bundle.info.normalization
