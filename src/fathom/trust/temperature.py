"""``fathom calibrate RUN``: fit temperature scaling on the validation split and write the
calibrated model as a new run folder ``RUN-calibrated`` next to the original.

A new folder (not an update in place) keeps the original run's weights and checkpoints intact;
the new run's lineage ends with the ``temperature`` transform, so ``fathom.load``, ``eval``,
``predict`` and ``report`` use the scaled logits. The folder is assembled under a temporary
name and renamed into place, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fathom.errors import FathomError
from fathom.runs import Run, apply_transform
from fathom.runs.folder import read_run_json, save_weights, update_run_json
from fathom.runs.loading import load
from fathom.trust.calibration import calibration_metrics, fit_temperature
from fathom.trust.common import logits_of, require_classifier, split_tensors

SKIPPED = ("checkpoints", "report.html", "card")


def measure_temperature(run: Run, split: str = "val") -> dict[str, Any]:
    """T fitted on ``split``, with the metrics of that split and the test split before/after."""
    require_classifier(run, "calibration")
    fitted_on = split_tensors(run, split)
    logits = logits_of(run.model, fitted_on.inputs)
    temperature = fit_temperature(logits, fitted_on.targets)
    result: dict[str, Any] = {"temperature": temperature, "fitted_on": split}
    for name in dict.fromkeys([split, "test"]):
        try:
            chosen = split_tensors(run, name)
        except FathomError:
            continue
        scores = logits_of(run.model, chosen.inputs)
        before = calibration_metrics(scores.softmax(1), chosen.targets)
        after = calibration_metrics((scores / temperature).softmax(1), chosen.targets)
        result[name] = {"before": before, "after": after}
    return result


def calibrate_run(path: str | Path, split: str = "val", name: str | None = None) -> dict[str, Any]:
    """Write ``RUN-calibrated`` (or ``name``) with the temperature in its lineage; returns the
    measurement and the new folder's path under ``"path"``."""
    source = Path(path)
    run = load(source)
    record = read_run_json(source)
    if record.get("lineage") is None:
        raise FathomError(f"{source}: a run of a custom model has no lineage to extend")
    result = measure_temperature(run, split)
    target = source.parent / (name or f"{source.name}-calibrated")
    if target.exists():
        raise FathomError(f"{target} exists already; remove it or pass --name")
    staging = source.parent / f".{target.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns(*SKIPPED))
        scaled = apply_transform(run.model, "temperature", temperature=result["temperature"])
        lineage = dict(record["lineage"])
        lineage["transforms"] = [*lineage.get("transforms", []), scaled.fathom_transforms[-1]]
        save_weights(staging / "model.safetensors", scaled, run.config.model.name)
        summary = {key: value for key, value in result.items() if key != "path"}
        update_run_json(staging, name=target.name, lineage=lineage, derived_from=str(source),
                        calibration=_without_bins(summary))  # fmt: skip
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    calibrated = load(target)
    calibrated.data = run.data
    update_run_json(target, test=calibrated.evaluate("test") if run.data.test is not None else {})
    calibrated.report()
    return {**result, "path": str(target)}


def _without_bins(result: dict[str, Any]) -> dict[str, Any]:
    """The measurement without the per-bin tables (those go in card.json, not run.json)."""
    if isinstance(result, dict):
        return {k: _without_bins(v) for k, v in result.items() if k != "bins"}
    return result
