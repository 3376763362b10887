"""Model options are checked against each factory's type hints and ranges before it runs."""

from __future__ import annotations

import pytest
import torch

import fathom
from fathom.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("cnn", {"channels": 2.5}, "model.channels (cnn): expected a list, got 2.5"),
        ("cnn", {"channels": True}, "model.channels (cnn): expected a list"),
        ("cnn", {"channels": []}, "model.channels (cnn): value should have at least 1 item"),
        (
            "cnn",
            {"channels": [8, True]},
            "model.channels[1] (cnn): input should be a valid integer",
        ),
        ("cnn", {"dropout": {"a": 1}}, "model.dropout (cnn): input should be a valid number"),
        ("cnn", {"dropout": 1.5}, "model.dropout (cnn): input should be less than 1"),
        ("cnn", {"hidden": 1e308}, "model.hidden (cnn): input should be a valid integer"),
        ("cnn", {"hidden": None}, "model.hidden (cnn)"),
        ("cnn", {"hidden": [256, 256]}, "model.hidden (cnn): input should be a valid integer"),
        ("cnn", {"batch_norm": 1}, "model.batch_norm (cnn): input should be a valid boolean"),
        ("mlp", {"hidden": 0}, "model.hidden (mlp): input should be greater than or equal to 1"),
        (
            "mlp",
            {"hidden": 10**6},
            "model.hidden (mlp): input should be less than or equal to 65536",
        ),
        ("resnet8", {"width": 0}, "model.width (resnet8): input should be greater than 0"),
        ("lstm", {"num_layers": 2.0}, "model.num_layers (lstm)"),
        ("gpt", {"dim": 32, "heads": True}, "model.heads (gpt)"),
    ],
)
def test_wrong_types_and_sizes_are_one_config_error(name, options, message):
    sizes = {"vocab_size": 20} if name == "gpt" else {"num_classes": 3}
    if name == "mlp":
        sizes["in_features"] = 4
    if name == "lstm":
        sizes["input_shape"] = (5, 2)
    with pytest.raises(ConfigError) as error:
        fathom.models.create(name, **sizes, **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_valid_options_still_build_numpy_sizes_included():
    cnn = fathom.models.create("cnn", in_channels=1, num_classes=3, image_size=8, channels=(4,),
                               hidden=0, dropout=0)  # fmt: skip
    assert cnn(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    mlp = fathom.models.create("mlp", in_features=4, num_classes=__import__("numpy").int64(3),
                               hidden=[8, 8])  # fmt: skip
    assert mlp(torch.zeros(2, 4)).shape == (2, 3)


def test_a_missing_size_the_data_cannot_give_is_a_config_error():
    with pytest.raises(ConfigError, match="'gpt' needs option 'vocab_size'"):
        fathom.models.create("gpt")
