import pytest

from fathom.config import build_config, load_yaml, parse_overrides
from fathom.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"train": {"epochz": 3}},
            "unknown config key 'train.epochz' (did you mean 'train.epochs'?)",
        ),
        ({"trian": {}}, "unknown config key 'trian' (did you mean 'train'?)"),
        ({"train": {"epochs": "abc"}}, "config key 'train.epochs'"),
        ({"optim": {"lr": -1}}, "config key 'optim.lr': input should be greater than 0"),
        ({"optim": {"name": "adm"}}, "config key 'optim.name'"),
        (
            {"train": {"early_stopping": {"patiense": 3}}},
            "did you mean 'train.early_stopping.patience'",
        ),
    ],
)
def test_config_errors_name_the_key(raw, message):
    with pytest.raises(ConfigError) as error:
        build_config(raw)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_overrides_parse_yaml_values():
    assert parse_overrides(
        ["train.epochs=3", "optim.lr=1e-3", "data.name=mnist", "train.compile=true"]
    ) == {
        "train": {"epochs": 3, "compile": True},
        "optim": {"lr": 0.001},
        "data": {"name": "mnist"},
    }
    with pytest.raises(ConfigError):
        parse_overrides(["train.epochs"])


def test_later_layers_win_and_renamed_sections_start_afresh():
    config = build_config(
        {"model": {"name": "cnn", "channels": [8]}, "train": {"epochs": 5, "seed": 3}},
        {"model": {"name": "mlp"}, "train": {"epochs": 2}},
    )
    assert config.model.name == "mlp" and config.model.options() == {}
    assert config.train.epochs == 2 and config.train.seed == 3


def test_yaml_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [epochs: 3\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
