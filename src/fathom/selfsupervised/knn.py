"""The kNN protocol for any run: the features of a split, scored against a training bank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from fathom.assemble import load_data
from fathom.data import load as load_dataset
from fathom.data.bundle import DataBundle, Split
from fathom.errors import ConfigError, DataError, FathomError
from fathom.files import atomic_write_json
from fathom.runs import Run, load
from fathom.runs.actions import model_device
from fathom.tasks.knn import bank_subset, knn_predict, normalised_features

QUERY_CHUNK = 1024  # queries scored at once: a (chunk, bank) similarity matrix


def knn_evaluate(
    run: Run | str | Path,
    data: DataBundle | str | None = None,
    *,
    split: str = "test",
    k: int = 200,
    temperature: float = 0.1,
    bank: int = 10_000,
) -> dict[str, Any]:
    """Weighted kNN accuracy (cosine, ``exp(similarity / temperature)`` votes of the ``k``
    nearest) of ``run``'s backbone features on ``data``'s ``split`` (default: the run's own
    dataset), with at most ``bank`` training examples as the memory bank.

    Works on any run whose model has the transfer contract (a self-supervised run, a classifier,
    a fine-tuned run); the linear probe is ``fathom.finetune(run, data, overrides=
    ["transfer.mode=features", "transfer.cache_features=true"])``. Returns ``{"knn_accuracy",
    "k", "temperature", "bank", "queries", "split", "data"}``, also written to
    RUN/knn-DATA-SPLIT.json."""
    if k < 1 or bank < 1 or temperature <= 0:
        raise ConfigError(
            f"k and bank must be >= 1 and temperature > 0, got {k}, {bank}, {temperature}"
        )
    chosen = run if isinstance(run, Run) else load(run)
    bundle = dataset_for(chosen, data)
    train, queries = labelled_splits(bundle, split)
    bank_inputs, bank_labels = bank_subset(train.inputs, train.targets, bank)
    was_training = chosen.model.training
    chosen.model.eval()
    try:
        accuracy = knn_accuracy(
            backbone_of(chosen.model), Split(bank_inputs, bank_labels), queries,
            int(bundle.info.num_classes or 0), k, temperature,
        )  # fmt: skip
    finally:
        chosen.model.train(was_training)
    result = {
        "knn_accuracy": accuracy, "k": k, "temperature": temperature, "bank": len(bank_inputs),
        "queries": len(queries), "split": split, "data": bundle.info.name,
    }  # fmt: skip
    if chosen.path is not None:
        atomic_write_json(chosen.path / f"knn-{bundle.info.name}-{split}.json", result)
    return result


def labelled_splits(bundle: DataBundle, split: str) -> tuple[Split, Split]:
    """The training split (the bank) and the query split, in memory, with classes."""
    train = bundle.train
    queries = getattr(bundle, split, None) if split in ("val", "test") else None
    if not isinstance(train, Split) or not isinstance(queries, Split):
        raise DataError(f"dataset '{bundle.info.name}' has no {split} split held in memory")
    if int(bundle.info.num_classes or 0) < 2:
        raise DataError(f"the kNN protocol needs class labels; '{bundle.info.name}' has none")
    return train, queries


def knn_accuracy(
    features: nn.Module, bank: Split, queries: Split, classes: int, k: int, temperature: float
) -> float:
    """The fraction of ``queries`` whose kNN vote (``bank`` as neighbours) is their label."""
    device = model_device(features)
    bank_features = normalised_features(features, bank.inputs.to(device))
    bank_labels = bank.targets.to(device)
    correct = 0
    chunks = zip(queries.inputs.split(QUERY_CHUNK), queries.targets.split(QUERY_CHUNK), strict=True)
    for inputs, labels in chunks:
        query = normalised_features(features, inputs.to(device))
        predicted = knn_predict(query, bank_features, bank_labels, classes, k, temperature)
        correct += int((predicted.cpu() == labels).sum())
    return correct / len(queries)


def dataset_for(run: Run, data: DataBundle | str | None) -> DataBundle:
    """``data`` (a bundle or a dataset name), else the run's own; of the run's input shape."""
    if isinstance(data, DataBundle):
        bundle = data
    elif data is None or data == run.config.data.name:
        bundle = run.data if run.data is not None else load_data(run.config)
    else:
        section = run.config.data
        bundle = load_dataset(data, data_dir=section.data_dir, seed=run.config.train.seed)
    if tuple(bundle.info.input_shape) != tuple(run.info.input_shape):
        raise ConfigError(
            f"the run reads inputs of shape {list(run.info.input_shape)}, but "
            f"'{bundle.info.name}' has {list(bundle.info.input_shape)}"
        )
    return bundle


def backbone_of(model: nn.Module) -> nn.Module:
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Module):
        raise FathomError(
            f"the kNN protocol needs a model with the transfer contract (.features); "
            f"{type(model).__name__} has none"
        )
    return features
