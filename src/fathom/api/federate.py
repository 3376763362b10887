"""``fathom.federate``: a federated run (in-process simulation) with a normal run folder, and
``fathom.federate(resume=...)`` to continue one after a kill at any round."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from fathom.api.train import start_run_record
from fathom.assemble import ConfigSource, build_model, load_data, prepare, seed_everything
from fathom.data.bundle import DataBundle
from fathom.engine import load_checkpoint
from fathom.errors import CheckpointError
from fathom.federated.record import (
    CHECKPOINT,
    after_round,
    check_saved_split,
    save_split,
    write_summary,
)
from fathom.federated.simulation import FederatedConfig, Simulation
from fathom.runs import Run
from fathom.runs.folder import (
    new_run_dir,
    read_config,
    read_run_json,
    save_weights,
    update_run_json,
)

CLIENT_DEFAULTS = ["optim.name=sgd", "optim.momentum=0", "optim.lr=0.05", "data.batch_size=10",
                   "schedule.name=constant", "train.device=cpu"]  # fmt: skip
"""McMahan et al.'s client optimizer (plain SGD, B=10); the user's overrides come after."""


def federate(
    data: DataBundle | str | None = None,
    model: nn.Module | str | None = None,
    *,
    config: ConfigSource = None,
    overrides: Iterable[str] = (),
    resume: str | Path | None = None,
    **settings: Any,
) -> Run:
    """Train ``model`` on ``data`` split among clients (``settings``: clients, fraction,
    local_epochs, rounds, split, alpha, strategy, mu, server, server_lr, server_momentum);
    ``resume=RUN`` continues an interrupted federated run from its last round."""
    if resume is not None:
        return resume_federated(Path(resume))
    federated = FederatedConfig(**settings)
    resolved, bundle, network = prepare(model, data, config, [*CLIENT_DEFAULTS, *overrides], {})
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
    return finish(simulation, run_dir)


def resume_federated(run_dir: Path) -> Run:
    """Continue a federated run from ``checkpoints/federated.safetensors`` (or round 0)."""
    record = read_run_json(run_dir)
    if record.get("kind") != "federated":
        raise CheckpointError(f"{run_dir} is not a federated run (continue it with fathom resume)")
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
    config, bundle = simulation.config, simulation.bundle
    save_weights(run_dir / "model.safetensors", simulation.model, config.model.name)
    run = Run(run_dir, config, bundle.info, simulation.model, bundle)
    evaluation = run.evaluate("test") if bundle.test is not None else {}
    summary = write_summary(run_dir, simulation)
    last = summary["rounds"][-1] if summary["rounds"] else {}
    update_run_json(run_dir, status="completed", rounds_completed=simulation.round, test=evaluation,
                    final_round=last, steps=simulation.round)  # fmt: skip
    from fathom.report import write_report

    write_report(run_dir)
    return run


__all__ = ["federate"]
