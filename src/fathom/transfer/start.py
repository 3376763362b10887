"""What ``fit`` and ``resume`` ask of transfer: the source's config layer, the starting
network, and the freezing callbacks. ``fathom train`` with ``model.init_from=...`` and
``fathom finetune`` go through the same three functions."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from torch import nn

from fathom.assemble import ConfigSource, as_layer, evaluation_batch_size
from fathom.config import FathomConfig, build_config, merge_layer, parse_overrides
from fathom.data.bundle import DataBundle
from fathom.engine import Callback
from fathom.engine.features import resolve_device
from fathom.errors import ConfigError
from fathom.transfer.cached import backbone, cached_bundle, head_only_callbacks, in_memory
from fathom.transfer.contrastive import tune_on_pairs
from fathom.transfer.freezing import freezing_callbacks
from fathom.transfer.sources import resolve_source, source_layer
from fathom.transfer.weights import start_from


def with_source_layer(config: ConfigSource, overrides: Iterable[str]) -> ConfigSource:
    """``config`` with the source's model (and tokenizer) beneath it when ``model.init_from``
    is set in it or in ``overrides``; unchanged otherwise."""
    layer = as_layer(config)
    probe = build_config(layer, parse_overrides(list(overrides)))
    if probe.model.init_from is None:
        return config
    return merge_layer(source_layer(probe.model.init_from), layer)


def starting_network(
    config: FathomConfig, bundle: DataBundle, network: nn.Module, quiet: bool = False
) -> tuple[nn.Module, dict[str, Any] | None]:
    """The network from ``model.init_from`` (or ``network`` unchanged) and what to record."""
    if config.model.init_from is None:
        return network, None
    source = resolve_source(config.model.init_from)
    started, line = start_from(source, network, bundle.info)
    if not quiet:
        print(line, file=sys.stderr)
    return started, {"source": source.name, "load_report": line, "mode": config.transfer.mode}


def transfer_callbacks(config: FathomConfig, network: nn.Module) -> list[Callback]:
    """Freezing and unfreezing for ``transfer.*`` (nothing when everything trains)."""
    if cached(config):
        return []
    return freezing_callbacks(config.transfer, network)


def cached(config: FathomConfig) -> bool:
    """Whether the head trains on features computed once (``transfer.cache_features``)."""
    transfer = config.transfer
    if transfer.cache_features and transfer.mode != "features":
        raise ConfigError("transfer.cache_features=true needs transfer.mode=features")
    return transfer.cache_features


def training_data(
    config: FathomConfig, network: nn.Module, bundle: DataBundle
) -> tuple[FathomConfig, DataBundle, list[Callback], dict[str, Any]]:
    """What the trainer gets: the data (cached features, for ``transfer.cache_features``), its
    config (no augmentation of fixed features), the callbacks that swap the backbone, and what
    the contrastive tuning of ``transfer.contrastive_steps`` did (for run.json; {} without)."""
    tuned = tune_backbone(config, network, bundle)
    if not cached(config):
        return config, bundle, [], tuned
    device = resolve_device(config.train.device)
    features = cached_bundle(network, bundle, evaluation_batch_size(config), device)
    head_config = config.model_copy(deep=True)
    head_config.data.augment = {}
    # The weight EMA would copy the whole model before its backbone is set aside (a recipe's
    # train.ema_decay, e.g. mnist's, then failed on mismatched tensors); a linear head on fixed
    # features gains little from it, so a cached-features run trains without it.
    head_config.train.ema_decay = None
    return head_config, features, head_only_callbacks(network), tuned


def tune_backbone(config: FathomConfig, network: nn.Module, bundle: DataBundle) -> dict[str, Any]:
    """``transfer.contrastive_steps`` of pair tuning of the backbone (``features``) on the
    labelled training examples, before anything else trains; {} when off."""
    transfer = config.transfer
    if not transfer.contrastive_steps:
        return {}
    option = "transfer.contrastive_steps"
    features, train = backbone(network, option), in_memory(bundle.train, option)
    device = resolve_device(config.train.device)
    steps, lr, seed = transfer.contrastive_steps, transfer.contrastive_lr, config.train.seed
    return {"contrastive": tune_on_pairs(features, train, steps, lr, config.data.batch_size,
                                         seed, device)}  # fmt: skip
