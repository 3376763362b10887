"""Seeded train/validation/test splits and normalisation fitted on the training split only."""

from __future__ import annotations

import warnings

import torch

from fathom.data.bundle import DataBundle, LazySplit, Split
from fathom.data.duplicates import drop_copies
from fathom.errors import ConfigError

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
    eval_limit: int | None = None,
    labels_per_class: int | None = None,
    label_fraction: float | None = None,
    dedupe: bool = False,
) -> DataBundle:
    """Add missing test/val splits (seeded), cap the training set (``limit``) and the evaluation
    sets (``eval_limit``: quick trials), keep a class-balanced subset of labelled examples
    (few-label experiments), drop evaluation rows that copy training rows (``dedupe``), and
    normalise on train stats."""
    number_rows(bundle)
    train, val, test = bundle.train, bundle.val, bundle.test
    if test is None:
        train, test = carve(train, test_fraction, seed)
    if val is None:
        train, val = carve(train, val_fraction, seed + 1)
    if limit is not None:
        train = capped(train, limit, seed + 2)
    if eval_limit is not None:
        val, test = (capped(split, eval_limit, seed + 4) for split in (val, test))
    if labels_per_class is not None or label_fraction is not None:
        train = train.subset(few_labels(train.targets, labels_per_class, label_fraction, seed + 3))
    bundle = DataBundle(bundle.info, train, val, test)
    if dedupe:
        bundle = drop_evaluation_copies(bundle)
    if bundle.info.normalization is not None:
        return bundle  # the dataset scaled itself (forecasting series: on their training part)
    if normalize and isinstance(train, Split) and train.inputs.is_floating_point():
        apply_normalization(bundle)
    elif normalize and not isinstance(train, Split):
        apply_lazy_normalization(bundle, seed)
    return bundle


def capped(split: Split | LazySplit | None, limit: int, seed: int) -> Split | LazySplit | None:
    """A seeded subset of ``limit`` examples of ``split`` (the split itself when not larger)."""
    if split is None or len(split) <= limit:
        return split
    return split.subset(seeded_permutation(len(split), seed)[:limit])


def drop_evaluation_copies(bundle: DataBundle) -> DataBundle:
    """``data.dedupe``: the bundle without validation/test rows equal to a training row (id-like
    table columns left out), said in one line when any went."""
    bundle, dropped = drop_copies(bundle)
    if any(dropped.values()):
        counts = ", ".join(f"{count} {name}" for name, count in dropped.items() if count)
        warnings.warn(f"data.dedupe: left out {counts} rows that copy training rows", stacklevel=4)
    return bundle


def few_labels(
    targets: torch.Tensor, per_class: int | None, fraction: float | None, seed: int
) -> torch.Tensor:
    """Indices of a seeded, class-balanced subset: ``per_class`` examples of each class (all of
    a class that has fewer), or ``fraction`` of each class (at least one), in a seeded order."""
    if per_class is not None and fraction is not None:
        raise ConfigError("give data.labels_per_class or data.label_fraction, not both")
    if targets.dim() != 1 or targets.is_floating_point():
        raise ConfigError(
            "data.labels_per_class / data.label_fraction need class labels (a classification dataset)"
        )
    order = seeded_permutation(len(targets), seed)
    shuffled = targets[order]
    chosen = []
    for label in torch.unique(shuffled).tolist():
        members = order[shuffled == label]
        keep = per_class if per_class is not None else max(1, round(len(members) * fraction))
        chosen.append(members[:keep])
    kept = torch.cat(chosen)
    return kept[seeded_permutation(len(kept), seed + 1)]


def number_rows(bundle: DataBundle) -> None:
    """Give each in-memory split without ``rows`` its examples' positions, before any shuffle."""
    for split in bundle.splits().values():
        if isinstance(split, Split) and split.rows is None:
            split.rows = torch.arange(len(split))


def normalization_statistics(
    inputs: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-channel mean/std for images (N, C, ...) and per-column for tables (N, F), and which
    channels are constant: those keep std 1 (centred, not scaled), so that a value unseen in
    training stays a modest number instead of being divided by ~0."""
    dims = [0, *range(2, inputs.dim())]
    values = inputs.double()
    mean = values.mean(dim=dims)
    constant = values.amax(dim=dims) == values.amin(dim=dims)
    spread = values.std(dim=dims) if len(values) > 1 else torch.ones_like(mean)
    std = torch.where(constant, 1.0, spread)
    return mean.float(), std.float().clamp_min(1e-30), constant


def warn_constant(constant: torch.Tensor, names: list[str] | None) -> None:
    """One line naming the channels or columns that hold one value throughout training."""
    indices = constant.nonzero().flatten().tolist()
    if not indices:
        return
    if names is not None and len(names) == len(constant):
        shown = [names[index] for index in indices]
        what = "column" if len(shown) == 1 else "columns"
    else:
        shown, what = (
            [str(index) for index in indices],
            "channel" if len(indices) == 1 else "channels",
        )
    listed = ", ".join(shown[:10]) + (f", ... ({len(shown) - 10} more)" if len(shown) > 10 else "")
    warnings.warn(
        f"{what} {listed}: the same value in every training example; left unscaled (std 1)",
        stacklevel=4,
    )


def normalize_inputs(inputs: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """Apply saved statistics to new inputs (predictions use this with the run's statistics)."""
    shape = [1, len(mean), *([1] * (inputs.dim() - 2))]
    mean_tensor = torch.tensor(mean, dtype=inputs.dtype).view(shape)
    std_tensor = torch.tensor(std, dtype=inputs.dtype).view(shape)
    return (inputs - mean_tensor) / std_tensor


def apply_normalization(bundle: DataBundle) -> None:
    mean, std, constant = normalization_statistics(bundle.train.inputs)
    warn_constant(constant, bundle.info.feature_names if bundle.train.inputs.dim() == 2 else None)
    bundle.info.normalization = {"mean": mean.tolist(), "std": std.tolist()}
    for split in bundle.splits().values():
        split.inputs = normalize_inputs(split.inputs.float(), mean.tolist(), std.tolist())


def apply_lazy_normalization(bundle: DataBundle, seed: int) -> None:
    """Statistics from a seeded sample of training examples, applied as lazy splits decode."""
    train = bundle.train
    sample = seeded_permutation(len(train), seed)[:STATISTICS_SAMPLE]
    inputs = torch.stack([train[int(index)][0] for index in sample])
    mean, std, constant = normalization_statistics(inputs)
    warn_constant(constant, None)
    bundle.info.normalization = {"mean": mean.tolist(), "std": std.tolist()}
    for split in bundle.splits().values():
        split.normalization = bundle.info.normalization
