"""Every registered model builds for typical data, runs forward and backward, and keeps the contract."""

from __future__ import annotations

import pytest
import torch

import fathom.models
import fathom.registry
from fathom.data.bundle import DataInfo
from fathom.errors import ConfigError

IMAGE_INFOS = {
    "grey28": DataInfo("grey", "classification", (1, 28, 28), num_classes=10),
    "colour32": DataInfo("colour", "classification", (3, 32, 32), num_classes=7),
    "digits8": DataInfo("digits", "classification", (1, 8, 8), num_classes=10),
}
TABULAR = DataInfo("table", "classification", (14,), num_classes=3)
MODELS = fathom.models.list("vision") + fathom.models.list("general")
# Each model kind has its registry-wide forward/backward test; a new kind must add its file here.
KIND_TESTS = {
    "vision": "tests/models/test_model_registry.py",
    "general": "tests/models/test_model_registry.py",
    "generative": "tests/models/test_generative_models.py",
    "sequence": "tests/models/test_sequence_registry.py and tests/models/test_rnn.py",
    "language": "tests/models/test_sequence_registry.py",
    "seq2seq": "tests/models/test_sequence_registry.py and tests/models/test_seq2seq_models.py",
}
# Keep the registry-wide run fast; full-size resnet18 is checked in test_mlp_cnn_resnet.py.
SMALL = {"resnet18": {"width": 0.25}}


def check_model(model: torch.nn.Module, info: DataInfo) -> None:
    inputs = torch.randn(2, *info.input_shape)
    outputs = model(inputs)
    assert outputs.shape == (2, info.output_size)
    assert torch.isfinite(outputs).all()
    outputs.square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def check_contract(model: torch.nn.Module, info: DataInfo) -> None:
    model.eval()
    inputs = torch.randn(2, *info.input_shape)
    features = model.features(inputs)
    assert features.dim() == 2 and len(features) == 2
    torch.testing.assert_close(model.head(features), model(inputs))
    groups = model.parameter_groups()
    flat = [id(parameter) for group in groups for parameter in group]
    assert len(groups) >= 2 and all(groups)
    assert len(flat) == len(set(flat)) == len(list(model.parameters()))
    assert set(flat) == {id(parameter) for parameter in model.parameters()}
    assert {id(parameter) for parameter in model.head.parameters()} <= {id(p) for p in groups[-1]}
    model.reset_head(3)
    assert model(inputs).shape == (2, 3)
    assert model.num_classes == 3
    assert sum(map(len, model.parameter_groups())) == len(list(model.parameters()))


@pytest.mark.parametrize("info_name", IMAGE_INFOS)
@pytest.mark.parametrize("name", MODELS)
def test_model_builds_and_trains_on_images(name: str, info_name: str) -> None:
    info = IMAGE_INFOS[info_name]
    torch.manual_seed(0)
    model = fathom.models.create_for_data(name, info, **SMALL.get(name, {}))
    check_model(model, info)
    check_contract(model, info)


@pytest.mark.parametrize("name", MODELS)
def test_model_on_tabular_data(name: str) -> None:
    if name != "mlp":
        with pytest.raises(ConfigError, match="image inputs"):
            fathom.models.create_for_data(name, TABULAR)
        return
    model = fathom.models.create_for_data(name, TABULAR)
    check_model(model, TABULAR)
    check_contract(model, TABULAR)


@pytest.mark.parametrize("name", MODELS)
def test_create_with_an_init_scheme(name: str) -> None:
    info = IMAGE_INFOS["digits8"]
    model = fathom.models.create_for_data(name, info, init="kaiming_normal", **SMALL.get(name, {}))
    check_model(model, info)


def test_unknown_model_option_names_the_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'dropout'"):
        fathom.models.create_for_data("cnn", IMAGE_INFOS["grey28"], droput=0.1)


def test_every_model_kind_has_a_registry_wide_test() -> None:
    untested = {
        name: fathom.registry.MODELS.kind_of(name)
        for name in fathom.models.list()
        if fathom.registry.MODELS.kind_of(name) not in KIND_TESTS
    }
    assert not untested, f"models of a kind with no registry-wide test: {untested}"
