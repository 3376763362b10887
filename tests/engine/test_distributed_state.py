"""The execution seam's state helpers on one process: the meta-device copy that holds FSDP's
gathered weights, and optimizer states numbered by parameter name and back."""

from __future__ import annotations

import torch
from torch import nn

from fathom.engine.distributed import Execution, meta_copy, parameter_names, renumbered


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.embed.weight  # tied, as language models do
        self.frozen = nn.Linear(3, 3)
        self.frozen.requires_grad_(False)
        self.register_buffer("mask", torch.ones(3), persistent=False)
        self.note = "kept"


def test_meta_copy_keeps_classes_ties_and_flags_without_memory() -> None:
    model = Tied()
    copy = meta_copy(model)
    assert type(copy) is Tied and copy.note == "kept"
    assert all(tensor.is_meta for tensor in [*copy.parameters(), *copy.buffers()])
    assert copy.out.weight is copy.embed.weight
    assert [p.requires_grad for p in copy.parameters()] == [
        p.requires_grad for p in model.parameters()
    ]
    assert not any(tensor.is_meta for tensor in [*model.parameters(), *model.buffers()])
    filled = copy.to_empty(device="cpu")
    filled.load_state_dict(model.state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(filled.state_dict()[name], value)


def test_optimizer_states_go_to_names_and_back_as_one_process_numbers_them() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    groups = [{"params": [model[2].weight, model[0].bias]}, {"params": [model[0].weight]}]
    optimizer = torch.optim.AdamW([*groups, {"params": [model[2].bias], "lr": 0.5}])
    model(torch.randn(4, 2)).sum().backward()
    optimizer.step()
    numbers = parameter_names(model, optimizer)
    assert numbers == {"2.weight": 0, "0.bias": 1, "0.weight": 2, "2.bias": 3}
    original = optimizer.state_dict()
    by_name = renumbered(original, {index: name for name, index in numbers.items()})
    assert by_name["param_groups"][0]["params"] == ["2.weight", "0.bias"]
    assert by_name["state"]["2.bias"] is original["state"][3]
    assert renumbered(by_name, numbers) == original


def test_one_process_states_are_the_modules_own() -> None:
    execution, model = Execution("fsdp"), nn.Linear(2, 2)  # fsdp on one process: nothing shards
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    assert not execution.shards_state
    assert execution.model_state(model).keys() == model.state_dict().keys()
    assert execution.optimizer_state(model, optimizer) == optimizer.state_dict()
    assert execution.gathered(model) is model
