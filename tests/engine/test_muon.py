"""Muon: which weights it takes, orthogonalisation, the optimizer step, checkpoint round trip."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import fathom
from fathom.api import resume
from fathom.config import OptimConfig
from fathom.engine.muon import Muon, hidden_matrices, muon_parameter_groups, orthogonalise
from fathom.engine.optim import build_optimizer
from fathom.errors import ConfigError
from fathom.models.gpt import gpt
from tests_support import InterruptAt


def test_gpt_hidden_matrices_are_the_block_weights_not_the_tied_embedding() -> None:
    model = gpt(vocab_size=11, dim=16, depth=2, heads=2, context=8)
    hidden = hidden_matrices(model)
    expected = {
        id(parameter)
        for name, parameter in model.named_parameters()
        if name.startswith("stack.blocks.") and name.endswith("weight") and parameter.dim() == 2
    }
    assert hidden == expected and len(expected) == 2 * 5  # q, kv, out, two feed-forward layers
    assert id(model.stack.token_embedding.weight) not in hidden


def test_mlp_input_and_output_layers_take_adamw() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    assert hidden_matrices(model) == {id(model[2].weight)}


def test_layers_under_a_head_are_never_hidden() -> None:
    model = nn.Module()
    model.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    model.head = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    assert hidden_matrices(model) == {id(model.features[1].weight)}


def test_orthogonalise_flattens_the_spectrum_and_batches_like_one_by_one() -> None:
    torch.manual_seed(0)
    matrices = torch.randn(3, 16, 40) * torch.logspace(-2, 1, 40)  # badly conditioned
    result = orthogonalise(matrices).float()
    singular = torch.linalg.svdvals(result)
    assert singular.min() > 0.4 and singular.max() < 1.6  # Muon's quintic lands in ~[0.5, 1.5]
    alone = torch.stack([orthogonalise(matrix[None])[0] for matrix in matrices]).float()
    assert torch.allclose(result, alone, atol=1e-2)
    tall = orthogonalise(matrices.mT).float()
    assert torch.allclose(tall, result.mT, atol=1e-2)


def test_groups_keep_adamw_first_with_optim_lr_and_muon_lr_on_matrices() -> None:
    model = gpt(vocab_size=11, dim=16, depth=1, heads=2, context=8)
    optimizer = build_optimizer(
        model.parameters(), OptimConfig(name="muon", lr=3e-3, muon_lr=0.05), model
    )
    assert isinstance(optimizer, Muon)
    first, second = optimizer.param_groups
    assert (first["muon"], first["lr"]) == (False, 3e-3)
    assert (second["muon"], second["lr"]) == (True, 0.05)
    count = sum(len(group["params"]) for group in optimizer.param_groups)
    assert count == len(list(model.parameters()))


def test_muon_trains_a_small_network_and_refuses_what_it_cannot_do() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1)
    )
    inputs = torch.randn(256, 8)
    targets = inputs[:, :1] * inputs[:, 1:2]
    optimizer = build_optimizer(model.parameters(), OptimConfig(name="muon", lr=1e-2), model)
    losses = []
    for _ in range(150):
        loss = nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    with pytest.raises(ConfigError, match="fused"):
        build_optimizer(model.parameters(), OptimConfig(name="muon", fused=True), model)
    with pytest.raises(ConfigError, match="model"):
        build_optimizer(model.parameters(), OptimConfig(name="muon"))


def test_weight_decay_shrinks_both_kinds_of_groups() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4))
    groups = muon_parameter_groups(model.parameters(), hidden_matrices(model), muon_lr=0.0)
    optimizer = Muon(groups, lr=0.0, weight_decay=0.5)
    for group in optimizer.param_groups:
        group["lr"] = 0.1
    before = [p.detach().clone() for p in model.parameters()]
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    for old, new in zip(before, model.parameters(), strict=True):
        assert torch.allclose(new, old * 0.95, atol=1e-6)


@pytest.mark.slow
def test_a_muon_run_resumes_bitwise(tmp_path) -> None:
    overrides = ["optim.name=muon", "train.epochs=3", "data.batch_size=64", "model.channels=[8,16]", "model.hidden=32",
                 "train.checkpoint_every_steps=5", f"run.dir={tmp_path}", "run.progress=none",
                 "run.report=false"]  # fmt: skip
    whole = fathom.fit(data="digits", overrides=[*overrides, "run.name=whole"])
    assert whole.summary["test"]["accuracy"] > 0.5  # ten classes: chance is 0.1
    with pytest.raises(KeyboardInterrupt):
        fathom.fit(
            data="digits", overrides=[*overrides, "run.name=cut"], callbacks=[InterruptAt(13)]
        )
    resumed = resume(tmp_path / "cut", progress="none")
    expected = load_file(str(whole.path / "model.safetensors"))
    for name, tensor in load_file(str(resumed.path / "model.safetensors")).items():
        assert torch.equal(tensor, expected[name]), name
