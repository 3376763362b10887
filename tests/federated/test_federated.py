"""Federated learning: splits, FedAvg against centralised SGD, FedProx, server optimizers,
bitwise resume of the simulation, and one-line errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from fathom.api.federate import federate
from fathom.assemble import resolve_config
from fathom.cli.main import main
from fathom.config import FathomConfig
from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.errors import ConfigError
from fathom.federated import (
    FederatedConfig,
    ServerOptimizer,
    Simulation,
    class_histogram,
    split_clients,
)
from fathom.federated import simulation as simulation_module
from fathom.federated.client import client_seed, train_client
from fathom.federated.server import weighted_average
from fathom.federated.simulation import round_plan

TINY = ["model.name=mlp", "data.batch_size=32", "train.diagnostics=false", "run.report=false"]
SETTINGS = {"clients": 4, "fraction": 0.5, "local_epochs": 1, "rounds": 3, "split": "shards"}


@pytest.mark.parametrize("kind", ["iid", "shards", "dirichlet"])
def test_splits_are_seeded_disjoint_and_complete(kind: str) -> None:
    targets = torch.arange(400) % 10
    parts = split_clients(targets, 20, kind, alpha=0.3, seed=1)
    again = split_clients(targets, 20, kind, alpha=0.3, seed=1)
    other = split_clients(targets, 20, kind, alpha=0.3, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(parts, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(parts, other, strict=True))
    everything = torch.cat(parts)
    assert len(everything) == len(targets) == len(set(everything.tolist()))
    assert all(len(part) for part in parts)
    histogram = class_histogram(targets, parts, 10)
    if kind == "shards":  # the pathological split: two classes per client here
        assert all(sum(count > 0 for count in row) <= 2 for row in histogram)


def test_bad_split_settings_are_one_line_config_errors() -> None:
    targets = torch.arange(100) % 10
    with pytest.raises(ConfigError, match="unknown split 'shard'.*shards"):
        split_clients(targets, 10, "shard")
    with pytest.raises(ConfigError, match="alpha must be > 0"):
        split_clients(targets, 10, "dirichlet", alpha=0.0)
    with pytest.raises(ConfigError, match="needs 200 training examples"):
        split_clients(targets, 100, "shards")


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--split=pathological", "unknown split"),
        ("--alpha=-1", "alpha must be > 0"),
        ("--processes=0", "processes must be between 1 and 256"),
        ("--stragglers=1", "stragglers must be in [0, 1)"),
        ("--local-epochs=1 --stragglers=0.5", "needs local_epochs of at least 2"),
        ("--server-lr=0", "server_lr must be > 0 (got 0.0)"),
        ("--server-momentum=1", "server_momentum in [0, 1) (got 1.0)"),
        ("federated.clientz=3", "'federated' has no option 'clientz' (did you mean 'clients'?)"),
        ("federated.clients=ten", "federated.clients: input should be a valid integer, got 'ten'"),
        ("federated.fraction=.nan", "federated.fraction: input should be a finite number"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    flag: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["federate", "digits", "--split=dirichlet", *flag.split(), f"run.dir={tmp_path}"])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1 and message in error[0]
    assert not any(tmp_path.iterdir())


def test_cli_federates_into_the_named_run_folder_and_reports_the_rounds(tmp_path: Path) -> None:
    arguments = ["federate", "digits", "--clients=4", "--fraction=0.5", "--local-epochs=1",
                 "--rounds=2", "--split=shards", *TINY, "run.report=true", "--run-dir",
                 str(tmp_path), "--name", "fed"]  # fmt: skip
    assert main(arguments) == 0
    assert [path.name for path in tmp_path.iterdir()] == ["fed"]
    run_dir = tmp_path / "fed"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    # the report: accuracy per round, participation and each client's class histogram
    summary = json.loads((run_dir / "federated.json").read_text())
    section = json.loads((run_dir / "sections" / "federated.json").read_text())
    taken = summary["participation"]
    assert f"took part in {min(taken)} to {max(taken)} of 2 rounds" in section["text"]
    accuracies = [entry["accuracy"] for entry in summary["rounds"]]
    expected = next((r + 1 for r, a in enumerate(accuracies) if a >= 0.9), "not reached")
    assert section["rows"][0] == ["test accuracy >= 0.9", expected]
    assert section["images"] == ["plots/federated.png"]
    assert (run_dir / "plots" / "federated.png").stat().st_size > 10_000
    assert "Federated learning" in (run_dir / "report.html").read_text()


def toy_problem() -> tuple[DataBundle, nn.Module]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(96, 4, generator=generator)
    targets = torch.randint(0, 3, (96,), generator=generator)
    info = DataInfo(name="toy", task="classification", input_shape=(4,), num_classes=3)
    torch.manual_seed(0)
    return DataBundle(info, Split(inputs, targets)), nn.Sequential(nn.Linear(4, 3))


def sgd_config(batch_size: int) -> FathomConfig:
    """Plain SGD at lr 0.5 on the toy problem, on the CPU, quietly."""
    return resolve_config(None, overrides=["optim.name=sgd", "optim.momentum=0", "optim.lr=0.5",
        f"data.batch_size={batch_size}", "train.device=cpu", "task.name=classification",
        "train.diagnostics=false", "run.progress=none"], use_recipe=False)  # fmt: skip


def test_fedavg_of_one_full_batch_step_equals_centralised_gradient_descent() -> None:
    """With E=1 and B >= every client's size, each client takes one full-batch step; FedAvg
    weighted by client sizes is then one full-batch gradient step on the union (FedSGD)."""
    bundle, network = toy_problem()
    centralised = copy.deepcopy(network)
    config = sgd_config(1000)
    settings = FederatedConfig(clients=5, fraction=1.0, local_epochs=1, rounds=1, split="dirichlet",
                               alpha=1.0)  # fmt: skip
    Simulation(config, settings, bundle, network).run()
    loss = nn.functional.cross_entropy(centralised(bundle.train.inputs), bundle.train.targets)
    loss.backward()
    with torch.no_grad():
        for parameter in centralised.parameters():
            parameter -= 0.5 * parameter.grad
    for ours, reference in zip(network.parameters(), centralised.parameters(), strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_stragglers_are_seeded_fedprox_keeps_their_work_and_fedavg_drops_it() -> None:
    settings = {"clients": 40, "fraction": 0.5, "local_epochs": 5, "stragglers": 0.5}
    prox = FederatedConfig(**settings, strategy="fedprox")
    plans = [round_plan(3, round_index, prox) for round_index in range(4)]
    assert plans == [round_plan(3, round_index, prox) for round_index in range(4)]  # seeded
    for plan in plans:
        epochs = list(plan.values())
        assert len(plan) == 20 and epochs.count(5) == 10  # half the round's clients straggle
        assert all(1 <= value <= 4 for value in epochs if value != 5)
    fedavg = round_plan(3, 0, FederatedConfig(**settings, strategy="fedavg"))
    assert fedavg == {client: 5 for client, value in plans[0].items() if value == 5}
    assert set(round_plan(3, 0, FederatedConfig(**{**settings, "stragglers": 0.0}))) == set(
        plans[0]
    )  # the same clients are drawn with or without stragglers


def one_fedavg_round(**settings: object) -> tuple[Simulation, DataBundle, dict]:
    """One FedAvg round of the toy problem with stragglers: (simulation, data, the start weights)."""
    bundle, network = toy_problem()
    start = copy.deepcopy(network.state_dict())
    federated = FederatedConfig(rounds=1, split="iid", **settings)  # type: ignore[arg-type]
    simulation = Simulation(sgd_config(8), federated, bundle, network)
    simulation.run()
    return simulation, bundle, start


def test_a_fedavg_round_averages_only_the_clients_that_finished() -> None:
    simulation, bundle, start = one_fedavg_round(clients=6, fraction=1.0, local_epochs=3,
                                                 stragglers=0.5)  # fmt: skip
    seed = simulation.config.train.seed
    finished = round_plan(seed, 0, simulation.federated)
    assert len(finished) == 3 and simulation.history[0]["clients"] == list(finished)
    states, sizes = [], []
    for client in finished:
        examples = bundle.train.subset(simulation.parts[client])
        state, size, _ = train_client(copy.deepcopy(simulation.model), start, examples,
                                      bundle.info, simulation.local, seed=client_seed(seed, 0, client))  # fmt: skip
        states.append(state)
        sizes.append(size)
    for name, value in weighted_average(states, sizes).items():
        torch.testing.assert_close(simulation.model.state_dict()[name], value)


def test_a_fedavg_round_whose_only_client_straggles_keeps_the_model() -> None:
    simulation, _, start = one_fedavg_round(clients=4, fraction=0.25, local_epochs=2,
                                            stragglers=0.9)  # fmt: skip
    assert simulation.history[0]["clients"] == [] and simulation.history[0]["train_loss"] is None
    assert all(
        torch.equal(start[name], value) for name, value in simulation.model.state_dict().items()
    )


def test_server_momentum_and_adam_move_along_the_pseudo_gradient() -> None:
    model = nn.Linear(2, 1)
    target = {name: value + 1.0 for name, value in model.state_dict().items()}
    ServerOptimizer(model, "fedavgm", lr=1.0, momentum=0.9).step(target)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, target[name])  # first step: no momentum yet
    before = copy.deepcopy(model.state_dict())
    ServerOptimizer(model, "fedadam", lr=0.1).step({k: v + 1.0 for k, v in before.items()})
    for name, value in model.state_dict().items():
        assert torch.all(value > before[name])


def test_simulation_resumes_bitwise_after_an_interruption_mid_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = federate("digits", overrides=[*TINY, f"run.dir={tmp_path / 'a'}"], **SETTINGS)
    original = simulation_module.Simulation.run_round

    def killed_in_round_two(self: Simulation) -> dict:
        if self.round == 1:
            raise KeyboardInterrupt  # as a kill in the middle of round 2
        return original(self)

    monkeypatch.setattr(simulation_module.Simulation, "run_round", killed_in_round_two)
    with pytest.raises(KeyboardInterrupt):
        federate("digits", overrides=[*TINY, f"run.dir={tmp_path / 'b'}"], **SETTINGS)
    monkeypatch.setattr(simulation_module.Simulation, "run_round", original)
    interrupted = next((tmp_path / "b").iterdir())
    resumed = federate(resume=interrupted)
    for name in ("model.safetensors", "metrics.jsonl", "clients.safetensors"):
        assert (whole.path / name).read_bytes() == (resumed.path / name).read_bytes(), name
    summary = (resumed.path / "federated.json").read_text()
    assert '"participation"' in summary and '"class_histogram"' in summary


def test_clients_in_worker_processes_train_as_one_process_on_one_thread(tmp_path: Path) -> None:
    """FedProx with stragglers: the workers also train each straggler's fewer epochs."""
    one_thread = [*TINY, "train.threads=1"]
    settings = {**SETTINGS, "local_epochs": 2, "strategy": "fedprox", "stragglers": 0.5}
    alone = federate("digits", overrides=[*one_thread, f"run.dir={tmp_path / 'a'}"], **settings)
    side_by_side = federate("digits", overrides=[*one_thread, f"run.dir={tmp_path / 'b'}"],
                            **settings, processes=2)  # fmt: skip
    for name in ("model.safetensors", "metrics.jsonl", "clients.safetensors"):
        assert (alone.path / name).read_bytes() == (side_by_side.path / name).read_bytes(), name


def test_worker_processes_are_for_the_simulation_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--processes is for the simulation"):
        federate("digits", overrides=[*TINY, f"run.dir={tmp_path}"], flower="local",
                 **SETTINGS, processes=2)  # fmt: skip
