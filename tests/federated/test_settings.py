"""The federated settings' layers: a config's ``federated:`` section, ``federated.KEY=VALUE``
overrides, then the keywords (``fathom federate``'s flags), the last winning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fathom.cli.main import main
from fathom.errors import ConfigError
from fathom.federated.settings import federated_config, split_federated
from fathom.federated.simulation import FederatedConfig


def test_the_section_then_overrides_then_keywords() -> None:
    config = {
        "data": {"name": "digits"},
        "federated": {"clients": 8, "rounds": 4, "split": "shards"},
    }
    layer, rest, section = split_federated(config, ["federated.rounds=2", "train.seed=3"])
    assert layer == {"data": {"name": "digits"}} and rest == ["train.seed=3"]
    assert section == {"clients": 8, "rounds": 2, "split": "shards"}
    chosen = federated_config({**section, "clients": 6})
    assert (chosen.clients, chosen.rounds, chosen.split, chosen.local_epochs) == (6, 2, "shards", 5)
    assert config["federated"]["rounds"] == 4  # the caller's mapping is left as it was


def test_types_are_checked_and_an_int_is_a_welcome_float() -> None:
    assert federated_config({"fraction": 1, "mu": 0.1}).fraction == 1.0
    for bad in ({"clients": 2.5}, {"clients": True}, {"split": 3}, {"server_lr": "fast"}):
        with pytest.raises(ConfigError, match="input should be a valid"):
            federated_config(bad)
    with pytest.raises(ConfigError, match="expected a mapping"):
        split_federated({"federated": [1, 2]}, [])


def test_the_server_rate_follows_the_server_optimizer() -> None:
    assert FederatedConfig(server="fedadam").server_lr == 0.01
    assert FederatedConfig(server="fedavgm").server_lr == 1.0
    assert FederatedConfig(server="fedadam", server_lr=0.1).server_lr == 0.1


def test_cli_reads_a_yaml_config_whose_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "federated.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"name": "digits", "batch_size": 32},
        "model": {"name": "mlp"},
        "train": {"diagnostics": False},
        "federated": {"clients": 3, "fraction": 1.0, "local_epochs": 1, "rounds": 3,
                      "split": "dirichlet", "alpha": 0.3},
    }))  # fmt: skip
    assert main(["federate", str(config), "--rounds=1", "--no-report",
                 f"run.dir={tmp_path / 'runs'}"]) == 0  # fmt: skip
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    settings = record["federated"]
    assert (settings["clients"], settings["rounds"], settings["alpha"]) == (3, 1, 0.3)
    assert settings["local_epochs"] == 1 and settings["server_lr"] == 1.0
    assert record["rounds_completed"] == 1 and record["model"]["name"] == "mlp"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())  # the file over the defaults
    assert config["data"]["batch_size"] == 32 and config["optim"]["name"] == "sgd"
    assert not (run_dir / "report.html").exists()  # --no-report
