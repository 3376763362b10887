"""``fathom.federate``: a federated run (in-process simulation) with a normal run folder, and
``fathom.federate(resume=...)`` to continue one after a kill at any round."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from fathom.api.train import start_run_record
from fathom.assemble import ConfigSource, build_model, load_data, prepare, seed_everything
from fathom.config import merge_layer, parse_overrides
from fathom.data.bundle import DataBundle
from fathom.engine import load_checkpoint
from fathom.errors import CheckpointError, ConfigError, FathomError
from fathom.federated.record import (
    CHECKPOINT,
    after_round,
    check_saved_split,
    finish_run,
    save_split,
)
from fathom.federated.settings import federated_config, split_federated
from fathom.federated.simulation import FederatedConfig, Simulation
from fathom.runs import Run
from fathom.runs.folder import (
    load_weights,
    new_run_dir,
    read_config,
    read_run_json,
    save_weights,
    update_run_json,
)
from fathom.runs.lock import training_lock

CLIENT_DEFAULTS = ["optim.name=sgd", "optim.momentum=0", "optim.lr=0.05", "data.batch_size=10",
                   "schedule.name=constant", "train.device=cpu"]  # fmt: skip
"""McMahan et al.'s client optimizer (plain SGD, B=10), over the dataset's recipe; the user's
config file and overrides come after."""


def federate(
    data: DataBundle | str | None = None,
    model: nn.Module | str | None = None,
    *,
    config: ConfigSource = None,
    overrides: Iterable[str] = (),
    resume: str | Path | None = None,
    flower: str | None = None,
    **settings: Any,
) -> Run:
    """Train ``model`` on ``data`` split among clients (``settings``: clients, fraction,
    local_epochs, rounds, split, alpha, strategy, mu, server, server_lr, server_momentum,
    processes, stragglers; they override the config's ``federated:`` section and
    ``federated.KEY=VALUE`` overrides);
    ``resume=RUN`` continues an interrupted federated run from its last round;
    ``flower="local"`` (or a SuperLink's ``HOST:PORT`` or Flower connection name) trains it on
    Flower SuperNodes instead of in this process (see ``fathom.federated.deploy``)."""
    if resume is not None:
        return resume_federated(Path(resume))
    config, overrides, section = split_federated(config, overrides)
    federated = federated_config({**section, **settings})
    if flower is not None and federated.processes > 1:
        raise ConfigError("--processes is for the simulation; with --flower every client is "
                          "its own process already")  # fmt: skip
    if flower is not None and importlib.util.find_spec("flwr") is None:
        raise FathomError("--flower needs Flower: pip install 'fathom-dl[federated]'")
    config = merge_layer(parse_overrides(CLIENT_DEFAULTS), config)  # the user's config wins
    resolved, bundle, network = prepare(model, data, config, overrides, {})
    federated.check(len(bundle.train))
    run_dir = new_run_dir(resolved)
    try:
        start_run_record(run_dir, resolved, bundle, network)
        update_run_json(run_dir, kind="federated", federated=federated.to_dict())
        simulation = Simulation(resolved, federated, bundle, network, run_dir)
        save_split(run_dir, simulation)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    if flower is not None:
        return deploy_with_flower(simulation, run_dir, flower)
    with training_lock(run_dir):
        return finish(simulation, run_dir)


def deploy_with_flower(simulation: Simulation, run_dir: Path, target: str) -> Run:
    """The run trained by Flower's ServerApp and ClientApps; its folder read back after."""
    from fathom.federated.deploy import run_deployment
    from fathom.federated.flower import INITIAL_WEIGHTS

    config = simulation.config
    save_weights(run_dir / INITIAL_WEIGHTS, simulation.model, config.model.name)
    update_run_json(run_dir, deployment="flower", flower_target=target)
    try:
        run_deployment(run_dir, simulation.federated.clients, target)
        if read_run_json(run_dir).get("status") != "completed":
            raise FathomError(f"the Flower run did not complete; see {run_dir / 'flower'}")
    except BaseException as error:
        status = "stopped" if isinstance(error, KeyboardInterrupt) else "failed"
        update_run_json(run_dir, status=status, message=str(error))
        raise
    load_weights(run_dir / "model.safetensors", simulation.model)
    return Run(run_dir, config, simulation.bundle.info, simulation.model, simulation.bundle)


def resume_federated(run_dir: Path) -> Run:
    """Continue a federated run from ``checkpoints/federated.safetensors`` (or round 0)."""
    record = read_run_json(run_dir)
    if record.get("kind") != "federated":
        raise CheckpointError(f"{run_dir} is not a federated run (continue it with fathom resume)")
    if record.get("deployment") == "flower":
        raise CheckpointError(f"{run_dir} was deployed with Flower; --resume continues simulations")
    with training_lock(run_dir):
        return continue_simulation(run_dir, record)


def continue_simulation(run_dir: Path, record: dict[str, Any]) -> Run:
    """``resume_federated``'s work, with the run's lock held."""
    config = read_config(run_dir)
    federated = FederatedConfig(**record["federated"])
    seed_everything(config.train.seed)
    bundle = load_data(config)
    simulation = Simulation(config, federated, bundle, build_model(config, bundle.info), run_dir)
    check_saved_split(run_dir, simulation)
    if (run_dir / CHECKPOINT).exists():
        simulation.restore(*load_checkpoint(run_dir / CHECKPOINT))
    update_run_json(run_dir, status="running", resumed_from_round=simulation.round)
    return finish(simulation, run_dir)


def finish(simulation: Simulation, run_dir: Path) -> Run:
    """Run the remaining rounds, then the weights, the test metrics, the summary and report."""
    try:
        simulation.run(after_round(run_dir))
    except KeyboardInterrupt:
        update_run_json(run_dir, status="stopped", message="interrupted; continue with "
                        f"'fathom federate --resume {run_dir}'")  # fmt: skip
        raise
    return finish_run(simulation, run_dir)


__all__ = ["federate"]
