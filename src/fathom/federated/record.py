"""What a federated run keeps in its folder: the client split (``clients.safetensors``), one
metrics line per round, the round checkpoint, and ``federated.json`` (accuracy per round, client
participation, the split's class histogram per client)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from fathom.engine import checkpoint_files as ckpt
from fathom.errors import CheckpointError
from fathom.federated.simulation import Simulation
from fathom.files import atomic_write_text
from fathom.runs import Run
from fathom.runs.folder import save_weights, update_run_json

CHECKPOINT = Path("checkpoints") / "federated.safetensors"


def save_split(run_dir: Path, simulation: Simulation) -> None:
    tensors = {f"client/{index}": part for index, part in enumerate(simulation.parts)}
    ckpt.save_checkpoint(run_dir / "clients.safetensors", tensors, {"kind": "client-split"})


def check_saved_split(run_dir: Path, simulation: Simulation) -> None:
    """On resume, the split drawn again from the seed must be the one saved with the run."""
    tensors, _ = ckpt.load_checkpoint(run_dir / "clients.safetensors")
    saved = [tensors[f"client/{index}"] for index in range(len(tensors))]
    if len(saved) != len(simulation.parts) or not all(
        torch.equal(a, b) for a, b in zip(saved, simulation.parts, strict=False)
    ):
        raise CheckpointError(f"{run_dir / 'clients.safetensors'}: differs from the run's split")


def after_round(run_dir: Path) -> Any:
    """The callback of ``Simulation.run``: a metrics line, then the round's checkpoint."""

    def record(simulation: Simulation) -> None:
        entry = {key: value for key, value in simulation.history[-1].items()
                 if key not in ("clients", "local_epochs")}  # fmt: skip
        line = {"kind": "val", "step": entry["round"], "epoch": entry["round"], **entry}
        metrics = run_dir / "metrics.jsonl"
        kept = metrics.read_text(encoding="utf-8").splitlines() if metrics.exists() else []
        kept = kept[: simulation.round - 1]  # lines past the last checkpoint are redone
        atomic_write_text(metrics, "".join(item + "\n" for item in [*kept, json.dumps(line)]))
        simulation.save(run_dir / CHECKPOINT)

    return record


def write_summary(run_dir: Path, simulation: Simulation) -> dict[str, Any]:
    """``federated.json``: the settings, accuracy per round, participation, class histogram."""
    summary = {
        "settings": simulation.federated.to_dict(),
        "rounds": simulation.history,
        "participation": simulation.participation,
        "class_histogram": simulation.histogram(),
        "client_sizes": simulation.client_sizes(),
    }
    atomic_write_text(run_dir / "federated.json", json.dumps(summary, indent=1))
    return summary


def finish_run(simulation: Simulation, run_dir: Path) -> Run:
    """After the last round: the weights, the test metrics, ``federated.json``, run.json, report."""
    config, bundle = simulation.config, simulation.bundle
    save_weights(run_dir / "model.safetensors", simulation.model, config.model.name)
    run = Run(run_dir, config, bundle.info, simulation.model, bundle)
    evaluation = run.evaluate("test") if bundle.test is not None else {}
    summary = write_summary(run_dir, simulation)
    last = summary["rounds"][-1] if summary["rounds"] else {}
    update_run_json(run_dir, status="completed", rounds_completed=simulation.round, test=evaluation,
                    final_round=last, steps=simulation.round)  # fmt: skip
    save_federated_section(run_dir, summary, bundle.info.class_names, config.run.report)
    if config.run.report:
        from fathom.report import write_report

        write_report(run_dir)
    return run


MILESTONES = (0.9, 0.95, 0.97, 0.99)  # test accuracies whose first round the report names


def save_federated_section(
    run_dir: Path, summary: dict[str, Any], class_names: list[str] | None, figures: bool
) -> None:
    """The report's "Federated learning" section: the settings in words, the first round that
    reached each accuracy milestone, and (``figures``) the per-round, participation and
    class-histogram panels."""
    from fathom.report.sections import save_section

    settings, rounds, taken = summary["settings"], summary["rounds"], summary["participation"]
    metric = "accuracy" if rounds and "accuracy" in rounds[0] else "loss"
    split = settings["split"] + (
        f" (alpha {settings['alpha']})" if settings["split"] == "dirichlet" else ""
    )
    strategy = settings["strategy"] + (
        f" (mu {settings['mu']})" if settings["strategy"] == "fedprox" else ""
    )
    text = (f"{settings['clients']} clients on a {split} split, each holding only its part; a "
            f"fraction {settings['fraction']} of them trains {settings['local_epochs']} local "
            f"epochs a round with {strategy}, the server averaging with {settings['server']}. "
            f"Each client took part in {min(taken)} to {max(taken)} of {len(rounds)} rounds.")  # fmt: skip
    rows = [[f"test accuracy >= {goal:g}", first_round(rounds, goal)] for goal in MILESTONES]
    images = []
    if figures and rounds:
        from fathom.report.federated_plot import plot_federated

        path = run_dir / "plots" / "federated.png"
        plot_federated(rounds, taken, summary["class_histogram"], metric, path, class_names)
        images.append("plots/federated.png")
    save_section(run_dir, "federated", "Federated learning", text=text, images=images,
                 headers=["Milestone", "First round"] if metric == "accuracy" else (),
                 rows=rows if metric == "accuracy" else ())  # fmt: skip


def first_round(rounds: list[dict[str, Any]], goal: float) -> int | str:
    """The first round whose test accuracy reached ``goal``, or "not reached"."""
    reached = (entry["round"] for entry in rounds if entry.get("accuracy", 0.0) >= goal)
    return next(reached, "not reached")
