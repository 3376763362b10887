"""Feature extraction with cached features: the frozen backbone runs once per example.

With ``transfer.mode=features`` and ``transfer.cache_features=true`` the backbone (``features``
of the model contract) encodes every split once, in eval mode; training then sees only the
head, on those features, so it costs seconds. The model's ``features`` is set aside for the
duration of training (an identity takes its place) and put back at its end, so the run saves,
evaluates and loads the whole model like any other. Such a run has no mid-training resume (its
checkpoints hold the head only): it is cheaper to run it again.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
from torch import nn

from fathom.data.bundle import DataBundle, Split
from fathom.engine.callbacks import Callback
from fathom.errors import ConfigError

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer


@torch.no_grad()
def encode(features: nn.Module, split: Split, batch_size: int, device: torch.device) -> Split:
    """``features`` of every input of ``split`` (eval mode), on the CPU. Token ids are encoded
    shortest first, so each batch holds texts of like length (a model that masks padding, such
    as MiniLM, then drops the batch's trailing padding) and put back in their order."""
    was_training = features.training
    features.eval().to(device)
    inputs, order = split.inputs, None
    if not inputs.is_floating_point() and inputs.dim() == 2:  # token ids, 0 = padding
        order = (inputs != 0).sum(dim=1).argsort(stable=True)
        inputs = inputs[order]
    chunks = [features(chunk.to(device)).float().cpu() for chunk in inputs.split(batch_size)]
    features.train(was_training)
    encoded = torch.cat(chunks)
    if order is not None:
        encoded = encoded[order.argsort()]
    return Split(encoded, split.targets)


def backbone(model: nn.Module, option: str) -> nn.Module:
    """The model's ``features`` (the transfer contract: ``features`` and ``head``), or a one-line
    error naming the ``option`` that needs it."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Module) or not hasattr(model, "head"):
        raise ConfigError(f"{option} needs a model with the transfer contract (features, head)")
    return features


def in_memory(split: object, option: str) -> Split:
    """``split`` if its inputs are tensors in memory, else a one-line error naming ``option``."""
    if not isinstance(split, Split):
        raise ConfigError(f"{option} needs the data in memory; this dataset decodes lazily")
    return split


def cached_bundle(
    model: nn.Module, bundle: DataBundle, batch_size: int, device: torch.device
) -> DataBundle:
    """``bundle`` with every split's inputs replaced by the model's features of them."""
    features = backbone(model, "transfer.cache_features")
    splits = {}
    for name, split in bundle.splits().items():
        in_memory(split, "transfer.cache_features")
        splits[name] = encode(features, split, batch_size, device)
    width = int(splits["train"].inputs.shape[1])
    info = dataclasses.replace(bundle.info, input_shape=(width,), normalization=None)
    return DataBundle(info, splits["train"], splits.get("val"), splits.get("test"))


class FeaturesAside(Callback):
    """Sets the model's ``features`` aside (an identity in its place) before anything else
    starts, while the head trains on cached features."""

    order = -100

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.features = model.features

    def fit_start(self, trainer: Trainer) -> None:
        self.model.features = nn.Identity()


class FeaturesBack(Callback):
    """Puts ``features`` back after every other callback has finished (saving, evaluation and
    loading then see the whole model)."""

    order = 1000

    def __init__(self, aside: FeaturesAside) -> None:
        self.aside = aside

    def fit_end(self, trainer: Trainer) -> None:
        self.aside.model.features = self.aside.features

    def fit_failed(self, trainer: Trainer) -> None:
        self.fit_end(trainer)


def head_only_callbacks(model: nn.Module) -> list[Callback]:
    aside = FeaturesAside(model)
    return [aside, FeaturesBack(aside)]
