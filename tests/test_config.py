import re

import pytest

from fathom.assemble import resolve_config
from fathom.config import build_config, load_yaml, merge_layer, parse_overrides
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


def test_one_calls_shortcuts_and_overrides_merge_before_a_rename():
    """fit(lr=0.75, overrides=["optim.name=sgd"]) trains at 0.75: the optimizer named in the
    overrides starts its section afresh over the recipe's, not over the same call's lr."""
    config = resolve_config(None, overrides=["optim.name=sgd"], lr=0.75)
    assert config.optim.name == "sgd" and config.optim.lr == 0.75
    assert resolve_config(None).optim.lr == 3e-3  # the digits recipe's AdamW rate...
    renamed = resolve_config(None, overrides=["optim.name=sgd"])
    assert renamed.optim.lr == 1e-3  # ...is not carried over to another optimizer


def test_yaml_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [epochs: 3\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"train": {"epochs": True}}, "train.epochs': input should be a valid integer"),
        ({"train": {"max_steps": True}}, "train.max_steps"),
        ({"train": {"grad_clip_norm": True}}, "train.grad_clip_norm': input should be a valid"),
        ({"train": {"l1": True}}, "train.l1"),
        ({"optim": {"eps": True}}, "optim.eps"),
        ({"schedule": {"min_lr_ratio": True}}, "schedule.min_lr_ratio"),
        ({"train": {"epochs": 2.5}}, "train.epochs"),
        ({"optim": {"lr": float("nan")}}, "optim.lr"),
        ({"optim": {"betas": [2, 3]}}, "optim.betas.0': input should be less than 1"),
        ({"optim": {"betas": [-1, 0.5]}}, "optim.betas.0"),
        ({"optim": {"weight_decay": 2.5}}, "optim.weight_decay"),
        ({"train": {"seed": 2**70}}, "train.seed': input should be less than or equal"),
        ({"train": {"threads": 1_000_000}}, "train.threads"),
        ({"data": {"batch_size": 2**70}}, "data.batch_size"),
    ],
)
def test_strict_types_and_bounds(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_config(raw)


def test_integers_are_valid_floats_and_yaml_lists_valid_betas():
    config = build_config({"optim": {"lr": 1, "betas": [0.5, 0.9]}, "train": {"l2": 0}})
    assert config.optim.lr == 1.0 and config.optim.betas == (0.5, 0.9)
    # 0 turns clipping off explicitly (null: the model's default clip)
    assert build_config({"train": {"grad_clip_norm": 0}}).train.grad_clip_norm == 0


def test_an_explicitly_empty_mapping_replaces_below_the_sections():
    recipe = {"data": {"augment": {"flip": {}, "crop": {"padding": 2}}}, "train": {"epochs": 3}}
    merged = merge_layer(recipe, {"data": {"augment": {}}, "train": {}})
    assert merged == {"data": {"augment": {}}, "train": {"epochs": 3}}
    assert build_config(recipe, {"data": {"augment": {}}}).data.augment == {}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("train:\n  run_name: café\n".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
        ("train:\n  epochs: 3\n".encode("utf-16"), "not UTF-8 text"),
        (b"train:\n  epochs: 3\xff\n", "not UTF-8 text (byte 0xff"),
        (b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        (b"x: " + b"[" * 40 + b"]" * 40 + b"\n", "nested too deeply"),
        (b"train: {epochs: 3\n", "not valid YAML"),
    ],
)
def test_unreadable_config_files_are_one_line_naming_the_file(tmp_path, payload, message):
    path = tmp_path / "config.yaml"
    path.write_bytes(payload)
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        load_yaml(path)
    assert "config.yaml" in str(error.value) and "\n" not in str(error.value)


def test_a_file_name_too_long_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_yaml(tmp_path / ("x" * 300 + ".yaml"))


def test_overrides_read_exponents_as_floats_and_refuse_deep_nesting():
    assert load_yaml_text("lr: 1e-3\nn: 5E4\nname: e5\n") == {"lr": 1e-3, "n": 5e4, "name": "e5"}
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_overrides(["model.hidden=" + "[" * 3000 + "]" * 3000])


def load_yaml_text(text: str) -> dict:
    from fathom.yaml_reader import parse_yaml

    return parse_yaml(text, "test")


def test_the_embedded_dataset_ignores_data_dir_and_writes_nothing_there(tmp_path, monkeypatch):
    """digits ships with scikit-learn: data.data_dir has nothing to read or download there."""
    from fathom import assemble as api

    monkeypatch.chdir(tmp_path)
    bundle = api.load_data(build_config({"data": {"name": "digits", "data_dir": "ten"}}))
    assert bundle.info.name == "digits" and not (tmp_path / "ten").exists()
