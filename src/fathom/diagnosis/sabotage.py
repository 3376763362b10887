"""Planted faults: small runs on the digits data that break training in a known way.

Each ``Fault`` builds a (model, bundle, overrides) triple whose run the doctor must diagnose with
``expected``; ``remedy`` (when one can be applied automatically) repairs the same broken setup the
way the diagnosis says (re-initialise, normalise the inputs, change the learning rate). The tests
and ``bench/sabotage.py`` both use this catalogue.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fathom.data.bundle import DataBundle, Split
from fathom.data.splits import apply_normalization
from fathom.models import create
from fathom.models.init import initialize

BASE_OVERRIDES = [
    "train.epochs=8",
    "data.batch_size=64",
    "optim.name=adamw",
    "optim.lr=0.002",
    "schedule.name=constant",
    "train.threads=1",
]


@dataclass
class Setup:
    model: nn.Module
    bundle: DataBundle
    overrides: list[str]


@dataclass
class Fault:
    name: str
    description: str
    expected: str | None  # the diagnosis key the doctor must give (None: a healthy run)
    build: Callable[[DataBundle], Setup]
    remedy: Callable[[Setup], Setup] | None = None


def mlp(
    bundle: DataBundle, hidden: list[int], activation: str = "relu", seed: int = 0
) -> nn.Module:
    torch.manual_seed(seed)
    features = int(torch.tensor(bundle.info.input_shape).prod())
    return create("mlp", in_features=features, num_classes=10, hidden=hidden, activation=activation)


def _scale_weights(model: nn.Module, factor: float) -> nn.Module:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.weight.mul_(factor)
    return model


def _with_train(bundle: DataBundle, inputs: torch.Tensor, targets: torch.Tensor) -> DataBundle:
    return DataBundle(copy.deepcopy(bundle.info), Split(inputs, targets), bundle.val, bundle.test)


def healthy(bundle: DataBundle) -> Setup:
    return Setup(mlp(bundle, [64, 64]), bundle, [])


def vanishing(bundle: DataBundle) -> Setup:
    """20 sigmoid layers with weights at half the default scale."""
    return Setup(_scale_weights(mlp(bundle, [32] * 20, "sigmoid"), 0.5), bundle, [])


def exploding(bundle: DataBundle) -> Setup:
    """8 ReLU layers with weights four times the default scale."""
    return Setup(_scale_weights(mlp(bundle, [64] * 8), 4.0), bundle, [])


def dead_relus(bundle: DataBundle) -> Setup:
    model = mlp(bundle, [64, 64])
    with torch.no_grad():
        for module in model.features.modules():
            if isinstance(module, nn.Linear):
                module.bias.fill_(-10.0)
    return Setup(model, bundle, [])


def saturated(bundle: DataBundle) -> Setup:
    return Setup(_scale_weights(mlp(bundle, [64, 64], "tanh"), 8.0), bundle, [])


def lr_high(bundle: DataBundle) -> Setup:
    return Setup(mlp(bundle, [64, 64]), bundle, ["optim.lr=2.0"])


def lr_low(bundle: DataBundle) -> Setup:
    return Setup(mlp(bundle, [64, 64]), bundle, ["optim.lr=2e-6"])


def overfit(bundle: DataBundle) -> Setup:
    """A 512x512 MLP on 5 training rows per class (balanced), trained long."""
    targets = bundle.train.targets
    rows = torch.cat([(targets == label).nonzero().flatten()[:5] for label in range(10)])
    small = _with_train(bundle, bundle.train.inputs[rows], targets[rows])
    return Setup(mlp(bundle, [512, 512]), small, ["train.epochs=60", "optim.lr=0.003"])


def underfit(bundle: DataBundle) -> Setup:
    return Setup(mlp(bundle, [1], "gelu"), bundle, [])


def unnormalised(bundle: DataBundle) -> Setup:
    scaled = copy.deepcopy(bundle)
    scaled.info.normalization = None
    for split in scaled.splits().values():
        split.inputs = split.inputs * 1000.0 + 5000.0
    return Setup(mlp(bundle, [64, 64]), scaled, [])


def imbalanced(bundle: DataBundle) -> Setup:
    targets = bundle.train.targets
    rare = (targets == 0).nonzero().flatten()
    keep_rare = rare[: max(1, int(0.02 * len(targets) / 0.98 * 1))]
    keep = torch.cat([(targets != 0).nonzero().flatten(), keep_rare]).sort().values
    return Setup(
        mlp(bundle, [64, 64]),
        _with_train(bundle, bundle.train.inputs[keep], targets[keep]),
        [],
    )


def noisy_labels(bundle: DataBundle) -> Setup:
    targets = bundle.train.targets.clone()
    generator = torch.Generator().manual_seed(0)
    chosen = torch.randperm(len(targets), generator=generator)[: int(0.3 * len(targets))]
    targets[chosen] = targets[chosen][torch.randperm(len(chosen), generator=generator)]
    return Setup(mlp(bundle, [64, 64]), _with_train(bundle, bundle.train.inputs, targets), [])


def leaked(bundle: DataBundle) -> Setup:
    inputs = torch.cat([bundle.train.inputs, bundle.test.inputs])
    targets = torch.cat([bundle.train.targets, bundle.test.targets])
    return Setup(mlp(bundle, [64, 64]), _with_train(bundle, inputs, targets), [])


def non_finite(bundle: DataBundle) -> Setup:
    """A second layer whose weights overflow float32 in the forward pass."""
    model = mlp(bundle, [64, 64])
    with torch.no_grad():
        model.features[2][0].weight[0].fill_(3e38)
    return Setup(model, bundle, [])


# ------------------------------------------------------------------ automatic remedies
def reinitialise(setup: Setup) -> Setup:
    return Setup(initialize(setup.model, "kaiming_normal"), setup.bundle, setup.overrides)


def normalise_inputs(setup: Setup) -> Setup:
    bundle = copy.deepcopy(setup.bundle)
    apply_normalization(bundle)
    return Setup(setup.model, bundle, setup.overrides)


def learning_rate(value: float) -> Callable[[Setup], Setup]:
    def change(setup: Setup) -> Setup:
        return Setup(setup.model, setup.bundle, [*setup.overrides, f"optim.lr={value}"])

    return change


FAULTS: list[Fault] = [
    Fault("healthy", "2x64 ReLU MLP, AdamW lr 2e-3", None, healthy),
    Fault("vanishing_gradients", "20-layer sigmoid MLP, weights x0.5", "vanishing_gradients", vanishing),
    Fault("exploding_gradients", "8-layer ReLU MLP, weights x4", "exploding_gradients", exploding, reinitialise),
    Fault("dead_relus", "ReLU biases set to -10", "dead_relus", dead_relus, reinitialise),
    Fault("saturated_activations", "tanh MLP, weights x8", "saturated_activations", saturated, reinitialise),
    Fault("lr_too_high", "learning rate x1000 (2.0)", "lr_too_high", lr_high, learning_rate(0.002)),
    Fault("lr_too_low", "learning rate /1000 (2e-6)", "lr_too_low", lr_low, learning_rate(0.002)),
    Fault("overfitting", "512x512 MLP on 50 rows (5 per class), 60 epochs", "overfitting", overfit),
    Fault("underfitting", "MLP with a 1-unit GELU hidden layer", "underfitting", underfit),
    Fault("unnormalised_inputs", "features x1000 + 5000, normalisation off", "unnormalised_inputs", unnormalised, normalise_inputs),
    Fault("class_imbalance", "class 0 cut to 2% of the training set", "class_imbalance", imbalanced),
    Fault("label_noise", "30% of training labels shuffled", "label_noise", noisy_labels),
    Fault("leakage", "test rows copied into the training set", "leakage", leaked),
    Fault("non_finite", "a row of the second layer set to 3e38 (overflow)", "non_finite", non_finite, reinitialise),
]  # fmt: skip


def by_name(name: str) -> Fault:
    return next(fault for fault in FAULTS if fault.name == name)


def describe(setup: Setup) -> dict[str, Any]:
    return {"rows": len(setup.bundle.train), "overrides": setup.overrides}


# ------------------------------------------------------------- faults planted the CLI way
@dataclass
class CliFault:
    """A fault planted as a user plants it: ``fathom train TARGET OVERRIDES...`` (``target``: a
    dataset or recipe name, or None for the embedded default). ``expected`` is the diagnosis the
    doctor must give (None: a healthy run, no diagnosis at all); ``repairable``: the overrides the
    doctor prints must remove the fault and bring the accuracy back."""

    name: str
    description: str
    target: str | None
    overrides: list[str]
    expected: str | None
    model: str | None = None  # fathom train --model NAME
    repairable: bool = True
    reference: str | None = None  # the healthy row whose score the repaired run must come near


CLI_COMMON = ["train.threads=1", "run.progress=none"]
CLI_FAULTS: list[CliFault] = [
    CliFault("cnn_healthy", "the embedded default, 6 epochs", None, ["train.epochs=6"], None),
    CliFault("cnn_lr_low", "CNN on digits, AdamW lr 3e-6", None,
             ["train.epochs=6", "optim.lr=3e-6", "schedule.name=constant"], "lr_too_low",
             reference="cnn_healthy"),
    CliFault("cnn_diverges", "CNN on digits, SGD lr 40 (NaN)", None,
             ["train.epochs=6", "optim.name=sgd", "optim.lr=40", "schedule.name=constant"],
             "non_finite", reference="cnn_healthy"),
    CliFault("mlp_underfit", "MLP with a 1-unit GELU hidden layer on digits", None,
             ["model.hidden=[1]", "model.activation=gelu", "train.epochs=8"], "underfitting",
             "mlp", reference="cnn_healthy"),
    CliFault("mlp_no_validation", "the same, no validation split", None,
             ["model.hidden=[1]", "model.activation=gelu", "train.epochs=8",
              "data.val_fraction=0"], "underfitting", "mlp", reference="cnn_healthy"),
]  # fmt: skip
"""Small enough for the tests (seconds each on digits); ``CLI_BENCH_FAULTS`` are the larger ones
that only ``bench/sabotage.py`` runs (other models and data; ``DATA`` is replaced by the folder of
the shared datasets). Label-noise rows are not repairable by a setting: their test labels carry
the same noise, so no rerun can show the accuracy coming back."""

_RESNET = ["data.limit=6000", "train.epochs=2", "train.precision=fp32", "train.ema_decay=null"]
_TEXTS = ["recipe=sentiment", "data.text_column=text", "data.target=label", "train.epochs=2"]
CLI_BENCH_FAULTS: list[CliFault] = [
    CliFault("mnist_tiny_folder_healthy", "image folder (mnist_tiny), CNN", "DATA/mnist_tiny",
             ["train.epochs=5"], None),
    CliFault("mnist_tiny_folder_lr_high", "image folder, AdamW lr 0.5", "DATA/mnist_tiny",
             ["train.epochs=5", "optim.name=adamw", "optim.lr=0.5"], "lr_too_high",
             reference="mnist_tiny_folder_healthy"),
    CliFault("mnist_resnet_lr_low", "ResNet-8 on MNIST (6,000 rows), SGD lr 1e-5",
             "mnist", [*_RESNET, "optim.lr=1e-5"], "lr_too_low", "resnet8",
             reference="mnist_resnet_healthy"),
    CliFault("mnist_resnet_healthy", "ResNet-8 on MNIST (6,000 rows), 2 epochs, no EMA", "mnist",
             _RESNET, None, "resnet8"),
    CliFault("adult_healthy", "MLP on the Adult CSV", "TABLES/adult.csv",
             ["data.target=income", "train.epochs=3"], None, "mlp"),
    CliFault("adult_lr_high", "MLP on the Adult CSV, AdamW lr 3", "TABLES/adult.csv",
             ["data.target=income", "train.epochs=3", "optim.name=adamw", "optim.lr=3"],
             "lr_too_high", "mlp", reference="adult_healthy"),
    CliFault("adult_duplicated_with_id", "Adult CSV, every row twice, a unique id column",
             "TABLES/adult_ids.csv", ["data.target=income", "train.epochs=3"], "leakage", "mlp",
             reference="adult_healthy"),
    CliFault("sentiment_healthy", "sentiment recipe, 2 epochs", "sentiment", ["train.epochs=2"],
             None),
    CliFault("adult_noisy_labels", "Adult CSV, 25% of the incomes flipped", "TABLES/adult_noisy.csv",
             ["data.target=income", "train.epochs=3"], "label_noise", "mlp", repairable=False),
    CliFault("texts_healthy", "your texts: the UCI sentences as a TSV, sentiment recipe, 2 epochs",
             "TABLES/sentiment.tsv", _TEXTS, None),
    CliFault("texts_noisy_labels", "the same TSV, 25% of the labels flipped",
             "TABLES/sentiment_noisy.tsv", _TEXTS, "label_noise", repairable=False),
    CliFault("sentiment_lstm_healthy", "LSTM on sentiment, AdamW lr 1e-3, 4 epochs", "sentiment",
             ["train.epochs=4"], None, "lstm"),
    # SGD lr 1, as Zaremba et al. (2014) trained LSTMs: lr 0.25-1 all reach ~0.69 here (3 seeds)
    CliFault("sentiment_lstm_sgd_healthy", "LSTM on sentiment, SGD lr 1, 4 epochs", "sentiment",
             ["train.epochs=4", "optim.name=sgd", "optim.lr=1", "optim.weight_decay=0"], None,
             "lstm"),
    CliFault("sentiment_lstm_sgd_lr5", "LSTM on sentiment, SGD lr 5", "sentiment",
             ["train.epochs=4", "optim.name=sgd", "optim.lr=5", "optim.weight_decay=0"],
             "lr_too_high", "lstm", reference="sentiment_lstm_sgd_healthy"),
    CliFault("gan_healthy", "mnist-gan recipe, 300 steps", "mnist",
             ["recipe=mnist-gan", "train.max_steps=300", "data.limit=12000"], None),
    CliFault("gan_lr_high", "mnist-gan, Adam lr 0.05", "mnist",
             ["recipe=mnist-gan", "train.max_steps=300", "data.limit=12000", "optim.lr=0.05"],
             "lr_too_high", repairable=False),
    CliFault("charlm_healthy", "tinyshakespeare recipe, 30 steps, fp32", "tinyshakespeare",
             ["train.max_steps=30", "train.precision=fp32"], None),
    CliFault("charlm_adamw_lr005", "char-LM, AdamW lr 0.05 (clipped)", "tinyshakespeare",
             ["train.max_steps=30", "train.precision=fp32", "optim.name=adamw", "optim.lr=0.05"],
             "lr_too_high", reference="charlm_healthy"),
]  # fmt: skip

_MNIST = ["data.limit=6000", "train.epochs=1"]
RECIPE_SETTINGS: dict[str, list[str]] = {
    "arithmetic": ["data.size=6000", "train.epochs=4"],
    "cifar10-byol": ["data.limit=2000", "train.max_steps=15", "task.knn_bank=1000"],
    "cifar10-simclr": ["data.limit=2000", "train.max_steps=15", "task.knn_bank=1000"],
    "cifar10-speed": ["data.limit=5000", "train.epochs=2", "train.compile=false"],
    "cifar10": ["data.limit=5000", "train.epochs=2"],
    "co2": ["train.epochs=10"],
    "dates": ["train.epochs=1"],
    "digits": ["train.epochs=10"],
    "elnino": ["train.epochs=10"],
    "folder": ["data.path=DATA/mnist_tiny/train", "train.epochs=5"],
    "mnist-byol": [*_MNIST, "task.knn_bank=1000"],
    "mnist-diffusion": ["data.limit=2000", "train.max_steps=30"],
    "mnist-fast": _MNIST,
    "mnist-gan": ["data.limit=12000", "train.max_steps=300"],
    "mnist-robust": _MNIST,
    "mnist-simclr": [*_MNIST, "task.knn_bank=1000"],
    "mnist-speed": [*_MNIST, "train.compile=false"],
    "mnist-vae": _MNIST,
    "mnist": _MNIST,
    "nile": ["train.epochs=10"],
    "sentiment-mlm": ["train.epochs=2"],
    "sentiment": ["train.epochs=2"],
    "series": ["data.path=TABLES/series.csv", "data.column=value", "train.epochs=10"],
    "sunspots": ["train.epochs=10"],
    "tinyshakespeare-5min": ["train.max_steps=30"],
    "tinyshakespeare": ["train.max_steps=30"],
}
"""Every recipe, shortened to well under a minute of CPU (``TABLES``: the folder where
``bench/sabotage.py`` writes its CSVs): each must end with no diagnosis."""
HEALTHY_RECIPES: list[CliFault] = [
    CliFault(f"recipe_{name}", f"the {name} recipe, shortened", None, [f"recipe={name}", *settings],
             None)
    for name, settings in RECIPE_SETTINGS.items()
]  # fmt: skip


def cli_fault(name: str) -> CliFault:
    every = [*CLI_FAULTS, *CLI_BENCH_FAULTS, *HEALTHY_RECIPES]
    return next(fault for fault in every if fault.name == name)
