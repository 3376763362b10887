"""GPU paths of the generative tasks: a bf16 training step and seeded sampling on CUDA."""

from __future__ import annotations

import pytest
import torch

import fathom.models
from fathom.config import OptimConfig, TrainConfig
from fathom.data.bundle import DataInfo, Split
from fathom.data.loader import TensorLoader
from fathom.engine import Trainer
from fathom.tasks import create_for_data

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
INFO = DataInfo("grey", "classification", (1, 28, 28), num_classes=3)
SETUPS = {
    "gan": ("gan", {"width": 8, "latent_dim": 8, "conditional": True}, {}),
    "vae": ("vae", {"width": 8}, {}),
    "diffusion": ("unet", {"width": 8, "conditional": True}, {"timesteps": 50, "steps": 5}),
}


@pytest.mark.parametrize("task_name", list(SETUPS))
def test_bf16_step_and_seeded_sampling_on_cuda(task_name: str) -> None:
    model_name, model_options, task_options = SETUPS[task_name]
    torch.manual_seed(0)
    model = fathom.models.create_for_data(model_name, INFO, **model_options)
    task = create_for_data(task_name, INFO, **task_options)
    split = Split(torch.rand(32, 1, 28, 28), torch.randint(0, 3, (32,)))
    trainer = Trainer(
        model, task, TensorLoader(split, 16, device="cuda"), device="cuda",
        train=TrainConfig(epochs=1, precision="bf16"), optim=OptimConfig(name="adam"),
    )  # fmt: skip
    trainer.fit()
    first, _ = task.sample_images(trainer.model, 4, seed=1)
    second, _ = task.sample_images(trainer.model, 4, seed=1)
    assert torch.isfinite(first).all() and torch.equal(first, second)
