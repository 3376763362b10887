"""The trials' run folders: full runs for the top trials, light records for the rest.

Once ``keep`` finished trials are better than a trial, no later trial can bring it back into
the top ``keep``, so its weights, checkpoints, plots and report are removed as soon as that is
true (any worker may do it). What stays is the light record: config.yaml, run.json,
metrics.jsonl, trial.json and the evaluations.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from fathom.files import atomic_write_text
from fathom.runs.folder import read_config, read_run_json, update_run_json

HEAVY = ("model.safetensors", "checkpoints", "plots", "sections", "report.html")


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials, best first (by the first objective, in the study's direction)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda trial: trial.values[0], reverse=maximize)


def strip_outside_top(study: optuna.Study, keep: int) -> None:
    """Make light records of every finished trial that is not among the best ``keep``."""
    top = {trial.number for trial in ranked(study)[:keep]}
    for trial in study.get_trials(deepcopy=False):
        finished = trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        if finished and trial.number not in top and "run" in trial.user_attrs:
            make_light(Path(trial.user_attrs["run"]))


def write_top_reports(study: optuna.Study, keep: int) -> None:
    """report.html of the best ``keep`` trials (trials train without one, to save their time)."""
    from fathom.report import write_report

    for trial in ranked(study)[:keep]:
        folder = Path(trial.user_attrs.get("run", ""))
        if (folder / "model.safetensors").exists() and not (folder / "report.html").exists():
            write_report(folder)


def make_light(folder: Path) -> None:
    if not (folder / "run.json").is_file() or not (folder / "model.safetensors").exists():
        return
    for name in HEAVY:
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
    with contextlib.suppress(Exception):  # another worker may be marking it too
        update_run_json(folder, light=True)


def write_best_config(study_dir: Path, trial: FrozenTrial) -> Path | None:
    """best.yaml: the best trial's resolved config, so ``fathom train best.yaml`` reproduces it
    (same seed); the run section is back to the defaults."""
    folder = Path(trial.user_attrs.get("run", ""))
    if not (folder / "config.yaml").is_file():
        return None
    config = read_config(folder).to_dict()
    config.pop("run", None)
    header = (
        f"# best trial {trial.number} of study {study_dir.name}: "
        f"{', '.join(f'{value:.6g}' for value in trial.values)}\n"
        f"# reproduce it with: fathom train {study_dir / 'best.yaml'}\n"
    )
    path = study_dir / "best.yaml"
    atomic_write_text(path, header + yaml.safe_dump(config, sort_keys=False))
    return path


def trial_summary(trial: FrozenTrial) -> dict[str, Any]:
    """A trial as study.json and the report list it."""
    folder = Path(trial.user_attrs.get("run", ""))
    light = None
    if (folder / "run.json").is_file():
        try:
            light = bool(read_run_json(folder).get("light", False))
        except Exception:  # noqa: BLE001 - a damaged record is listed without the flag
            light = None
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "values": trial.values,
        "params": trial.params,
        "reason": next(
            (
                trial.user_attrs[key]
                for key in ("fail_reason", "over_budget", "prune_reason")
                if key in trial.user_attrs
            ),
            trial.system_attrs.get("fail_reason"),
        ),
        "retry_of": trial.system_attrs.get("failed_trial"),
        "run": trial.user_attrs.get("run"),
        "light": light,
        "seconds": trial.duration.total_seconds() if trial.duration else None,
        "finished": trial.datetime_complete.isoformat() if trial.datetime_complete else None,
        **{
            k: trial.user_attrs[k]
            for k in ("latency_ms", "parameters", "macs")
            if k in trial.user_attrs
        },
    }
