"""The peers bench/overhead.py times beside Fathom: a DataLoader loop, Lightning and Keras 3.

Each ``*_epoch`` builds what its variant needs (untimed) and returns the epoch to time: a
callable that trains one epoch (or ``steps`` batches) and returns its own epoch time where the
framework has epoch hooks to take it from, else None (the caller times the call).
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common import plain_steps
from fathom.data.bundle import Split

Epoch = Callable[[], float | None]
OptimizerFactory = Callable[[nn.Module], torch.optim.Optimizer]
PEERS = {"lightning": "lightning", "keras": "keras"}  # variant: the module it needs


def step_limit(steps: int, split: Split, batch_size: int) -> int | None:
    """``steps`` when it stops short of a full epoch (warm-up), else None (no step limit)."""
    return steps if steps * batch_size < len(split) else None


def shuffled_dataloader(split: Split, batch_size: int, seed: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(split.inputs, split.targets),
        batch_size=batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )


def dataloader_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, split: Split, batch_size: int, seed: int,
    steps: int,
) -> Epoch:  # fmt: skip
    """The plain loop over a DataLoader of a TensorDataset (per-example indexing and collation)."""
    loader = shuffled_dataloader(split, batch_size, seed)
    return lambda: plain_steps(model, optimizer, loader, steps)


def lightning_epoch(
    model: nn.Module, make_optimizer: OptimizerFactory, split: Split, batch_size: int, seed: int,
    steps: int,
) -> Epoch:  # fmt: skip
    """``lightning.Trainer.fit`` for one epoch; the epoch is timed by its epoch hooks."""
    import lightning

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")

    class Classifier(lightning.LightningModule):
        def __init__(self, network: nn.Module) -> None:
            super().__init__()
            self.network = network

        def training_step(self, batch: Any, batch_index: int) -> torch.Tensor:
            inputs, targets = batch
            return F.cross_entropy(self.network(inputs), targets)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return make_optimizer(self.network)

    class EpochTimer(lightning.Callback):
        seconds: float | None = None

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            self.started = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            self.seconds = time.perf_counter() - self.started

    timer = EpochTimer()
    trainer = lightning.Trainer(
        max_epochs=1, max_steps=step_limit(steps, split, batch_size) or -1, accelerator="cpu",
        devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[timer],
    )  # fmt: skip
    loader = shuffled_dataloader(split, batch_size, seed)

    def run() -> float | None:
        trainer.fit(Classifier(model), loader)
        return timer.seconds

    return run


def keras_model(architecture: dict[str, Any]) -> Any:
    """The same layers in Keras 3 (channels first, like the torch models)."""
    import keras
    from keras import layers

    stack: list[Any] = [keras.Input((1, 28, 28))]
    if architecture["name"] == "mlp":
        stack += [layers.Flatten()]
        stack += [layers.Dense(width, activation="relu") for width in architecture["hidden"]]
    else:
        for width in architecture["channels"]:
            stack += [
                layers.Conv2D(width, 3, padding="same", use_bias=False, data_format="channels_first"),
                layers.MaxPooling2D(2, data_format="channels_first"),
                layers.BatchNormalization(axis=1),
                layers.ReLU(),
            ]  # fmt: skip
        stack += [layers.Flatten(), layers.Dense(architecture["hidden"], activation="relu")]
    return keras.Sequential([*stack, layers.Dense(10)])


def keras_epoch(
    architecture: dict[str, Any], learning_rate: float, split: Split, batch_size: int, seed: int,
    steps: int,
) -> Epoch:  # fmt: skip
    """``keras.Model.fit`` for one epoch on numpy arrays (SGD with momentum 0.9), timed by its
    epoch callbacks."""
    import keras

    keras.utils.set_random_seed(seed)
    network = keras_model(architecture)
    network.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    count = min(len(split), steps * batch_size)
    inputs, targets = split.inputs[:count].numpy(), split.targets[:count].numpy()

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds = time.perf_counter() - self.started

    timer = EpochTimer()

    def run() -> float | None:
        network.fit(
            inputs, targets, batch_size=batch_size, shuffle=True, verbose=0, callbacks=[timer]
        )
        return timer.seconds

    return run


def missing_peers(variants: list[str]) -> dict[str, str]:
    """Of ``variants``, the peers that cannot be imported, with the reason."""
    missing = {}
    for variant, module in PEERS.items():
        if variant not in variants:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                __import__(module)
        except Exception as error:  # noqa: BLE001 - any import failure skips the peer
            missing[variant] = f"{module} not importable: {type(error).__name__}: {error}"
    if "keras" in variants and "keras" not in missing:
        import keras

        if keras.backend.backend() != "torch":
            missing["keras"] = f"keras backend is {keras.backend.backend()!r}, not torch"
    return missing


def peer_versions(variants: list[str]) -> dict[str, str]:
    return {name: sys.modules[name].__version__ for name in PEERS if name in variants}
