"""The Flower deployment on loopback: ``fathom federate --flower local`` starts a SuperLink and two
SuperNodes on 127.0.0.1 (insecure, free ports), trains 2 rounds on digits, and ends every process.
Each client is its own process holding only its split part; the run folder is a normal one; the
final weights equal the in-process simulation's bitwise (same seeds, same code path)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import fathom
from fathom.assemble import load_data
from fathom.cli.main import main
from fathom.federated import class_histogram, split_clients
from fathom.runs.folder import read_config, read_run_json

HAS_FLOWER = importlib.util.find_spec("flwr") is not None
ARGUMENTS = ["federate", "digits", "--clients=2", "--fraction=1", "--local-epochs=2", "--rounds=2",
             "--split=shards", "--strategy=fedprox", "--stragglers=0.5", "model.name=mlp",
             "data.batch_size=32", "train.diagnostics=false", "run.report=false"]  # fmt: skip
"""FedProx with one straggler a round (1 local epoch of 2): the SuperNodes are sent each
client's own epochs, as the simulation trains them."""


def only_run(parent: Path) -> Path:
    (run_dir,) = list(parent.iterdir())
    return run_dir


def check_clients_held_only_their_parts(run_dir: Path, record: dict) -> None:
    from fathom.federated.flower import fingerprint

    config = read_config(run_dir)
    bundle = load_data(config)
    parts = split_clients(bundle.train.targets, 2, "shards", seed=config.train.seed)
    nodes = record["flower_nodes"]
    assert [node["partition-id"] for node in nodes] == [0, 1]
    assert [node["fingerprint"] for node in nodes] == [fingerprint(part) for part in parts]
    assert [node["examples"] for node in nodes] == [len(part) for part in parts]
    pids = {node["pid"] for node in nodes}
    assert len(pids) == 2 and os.getpid() not in pids  # two client processes, not this one
    summary = json.loads((run_dir / "federated.json").read_text())
    assert summary["class_histogram"] == class_histogram(bundle.train.targets, parts, 10)
    assert summary["participation"] == [2, 2]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_FLOWER, reason="needs flwr (pip install 'fathom-dl[federated]')")
def test_flower_loopback_deployment_trains_like_the_simulation(tmp_path: Path) -> None:
    assert main([*ARGUMENTS, "--flower=local", f"run.dir={tmp_path / 'flower'}"]) == 0
    deployed = only_run(tmp_path / "flower")
    record = read_run_json(deployed)
    assert record["status"] == "completed" and record["deployment"] == "flower"
    assert len((deployed / "metrics.jsonl").read_text().splitlines()) == 2
    check_clients_held_only_their_parts(deployed, record)
    assert fathom.load(deployed).evaluate("test")["accuracy"] == record["test"]["accuracy"]

    assert main([*ARGUMENTS, f"run.dir={tmp_path / 'simulation'}"]) == 0
    simulated = only_run(tmp_path / "simulation")
    ours, theirs = (load_file(run / "model.safetensors") for run in (deployed, simulated))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)
    assert (deployed / "metrics.jsonl").read_text() == (simulated / "metrics.jsonl").read_text()


def test_flower_missing_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "flwr" else find_spec(name, *rest))  # fmt: skip
    assert main([*ARGUMENTS, "--flower=local", f"run.dir={tmp_path}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "fathom-dl[federated]" in error
    assert not any(tmp_path.iterdir())


def test_a_flower_run_is_not_resumed_as_a_simulation(tmp_path: Path) -> None:
    from fathom.api.federate import federate
    from fathom.errors import CheckpointError
    from fathom.runs.folder import update_run_json

    update_run_json(tmp_path, kind="federated", deployment="flower", status="failed")
    with pytest.raises(CheckpointError, match="deployed with Flower"):
        federate(resume=tmp_path)
