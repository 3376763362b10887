"""The compressed model as a new run folder: lineage, weights, evaluation, compression.json and
a before/after section in its report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from torch import nn

from fathom.config import FathomConfig
from fathom.files import atomic_write_json
from fathom.runs import lineage_of
from fathom.runs.folder import (
    git_revision,
    new_run_dir,
    save_weights,
    update_run_json,
    versions,
    write_config,
)
from fathom.runs.run import Run

ROWS = (
    ("accuracy (test)", "accuracy"),
    ("size on disk (bytes)", "bytes"),
    ("parameters", "parameters"),
    ("MACs per example", "macs"),
    ("weight sparsity", "sparsity"),
    ("latency, batch 1 (ms)", "batch_1_ms"),
    ("latency, batch 64 (ms)", "batch_64_ms"),
)

STEP_FACTS = ("sparsity", "parameters", "macs", "batch_1_ms")


def write_compressed_run(
    source: Run, model: nn.Module, config: FathomConfig, summary: dict[str, Any], name: str | None
) -> Run:
    """A normal run folder beside ``source`` holding ``model`` (see fathom.runs.folder)."""
    root = source.path.parent if source.path is not None else Path(config.run.dir)
    default = f"{source.path.name}-compressed" if source.path is not None else None
    run_config = config.model_copy(
        update={"run": config.run.model_copy(update={"dir": str(root), "name": name or default})}
    )
    run_dir = new_run_dir(run_config)
    write_config(run_dir, run_config)
    parameters = summary["after"]["parameters"]
    update_run_json(
        run_dir, name=run_dir.name, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        status="running", versions=versions(), git=git_revision(), seed=config.train.seed,
        task=source.info.task, data=source.info.to_dict(), lineage=lineage_of(model),
        model={"name": config.model.name, "parameters": parameters, "registered": True},
        compressed_from=summary["source"],
    )  # fmt: skip
    save_weights(run_dir / "model.safetensors", model, config.model.name)
    result = Run(run_dir, run_config, source.info, model, source.data)
    evaluation = result.evaluate("test") if source.data.test is not None else {}
    atomic_write_json(run_dir / "compression.json", summary)
    save_comparison(run_dir, summary)
    update_run_json(run_dir, status="completed", message="compressed", test=evaluation)
    if run_config.run.report:  # the source's run.report, unless the caller's config changed it
        from fathom.report import write_report

        write_report(run_dir)
    return result


def ratio(before: Any, after: Any, key: str = "") -> str:
    if key == "accuracy" and isinstance(before, float) and isinstance(after, float):
        return f"{(after - before) * 100:+.2f} points"
    if not isinstance(before, int | float) or not isinstance(after, int | float) or not after:
        return ""
    return f"{before / after:.2f}x"


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if value < 10 else f"{value:.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def save_comparison(run_dir: Path, summary: dict[str, Any]) -> None:
    """The before/after table and the stages as a report section."""
    from fathom.report import save_section

    before, after = summary["before"], summary["after"]
    rows = [[label, cell(before.get(key)), cell(after.get(key)), ratio(before.get(key), after.get(key), key)]
            for label, key in ROWS]  # fmt: skip
    stages = "; ".join(
        f"{stage['name']}: {summary['selection_split']} accuracy {stage['accuracy']:.4f}"
        + "".join(
            f", {key} {cell(stage['details'][key])}"
            for key in STEP_FACTS
            if stage["details"].get(key) is not None
        )
        + " "
        f"({'kept' if stage['kept'] else 'over the accuracy budget, dropped'})"
        + (f" (note: {stage['details']['note']})" if stage["details"].get("note") else "")
        for stage in summary["stages"]
    )
    text = (
        f"Compressed from {summary['source']}. Baseline {summary['selection_split']} accuracy "
        f"{summary['baseline_accuracy']:.4f}; budget {summary['plan']['max_accuracy_drop']} "
        f"points. Stages: {stages}. CPU: {', '.join(summary['cpu']) or 'unknown'}. "
        f"Latency: {summary['latency_note']}."
    )
    save_section(run_dir, "compression", "Compression: before and after", text=text,
                 headers=["", "before", "after", "before / after"], rows=rows)  # fmt: skip
