"""GPU-only paths: mixed precision, torch.compile, channels-last. Skipped cleanly without CUDA."""

import pytest
import torch
from torch import nn

from fathom.config import OptimConfig, TrainConfig
from fathom.data.bundle import Split
from fathom.data.loader import TensorLoader
from fathom.engine import Trainer
from fathom.errors import ConfigError
from fathom.tasks.classification import Classification

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def image_data(count: int = 256) -> Split:
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(count) % 4
    inputs = torch.randn(count, 3, 16, 16, generator=generator) + targets[:, None, None, None]
    return Split(inputs, targets)


def convnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    )


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize(
    ("precision", "compile_model"), [("bf16", False), ("fp16", False), ("bf16", True)]
)
def test_mixed_precision_and_compile_train_on_gpu(precision, compile_model):
    data = image_data()
    config = TrainConfig(epochs=3, precision=precision, compile=compile_model, channels_last=True)
    trainer = Trainer(
        convnet(),
        Classification(4),
        TensorLoader(data, 32, shuffle=True, device="cuda", channels_last=True),
        TensorLoader(data, 128, device="cuda"),
        train=config,
        optim=OptimConfig(lr=0.01),
        device="cuda",
    )
    trainer.fit()
    assert trainer.last_evaluation["accuracy"] > 0.9
    assert trainer.precision.scaler.is_enabled() == (precision == "fp16")


def test_fp16_on_cpu_is_a_clear_error():
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        Trainer(
            convnet(),
            Classification(4),
            TensorLoader(image_data(), 32),
            train=TrainConfig(precision="fp16"),
        )
