"""The study folder and the Optuna study behind it.

Layout: study.json (what was searched, how, where it is stored, the best trial), optuna.db (the
default SQLite storage), trials/trial-NNNN/ (one Fathom run folder per trial, light for all but
the top ones), best.yaml, report.html and plots/. The study is created once, by the process
that starts the search; workers only load it (several processes creating the same study at
once race on the schema: optuna issue 1092).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna

from fathom.errors import ConfigError
from fathom.files import atomic_write_json
from fathom.tuning.choices import make_sampler, make_storage, redact
from fathom.tuning.runs import ranked, trial_summary, write_best_config, write_top_reports
from fathom.tuning.trial import TrialPlan
from fathom.tuning.worker import is_surplus

STUDY_FILE = "study.json"


@dataclass
class StudySpec:
    """Everything a worker or ``--resume`` needs to continue the study (study.json)."""

    name: str
    folder: str
    plan: TrialPlan
    trials: int
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    storage: str = ""  # the URL as given; study.json keeps it without a password
    keep_runs: int = 3
    heartbeat_seconds: int = 10
    grace_seconds: int = 30
    strategy: str | None = None  # architecture search: random, evolution or nsga2
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.folder)

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.path / 'optuna.db').resolve()}"

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["plan"] = self.plan.to_dict()
        record["storage"] = redact(self.storage)  # empty: the study folder's optuna.db
        record["storage_url"] = redact(self.storage_url())
        return record

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StudySpec:
        return cls(**{**raw, "plan": TrialPlan.from_dict(raw["plan"])})


def read_spec(folder: str | Path, storage: str | None = None) -> StudySpec:
    """study.json of a study folder; ``storage`` replaces a URL whose password was not kept."""
    file = Path(folder) / STUDY_FILE
    if not file.is_file():
        raise ConfigError(f"{folder} is not a study folder (no {STUDY_FILE})")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
        names = set(StudySpec.__dataclass_fields__)
        spec = StudySpec.from_dict({k: v for k, v in raw.items() if k in names})
    except (json.JSONDecodeError, TypeError, KeyError) as error:
        raise ConfigError(f"{file}: damaged study record ({error})") from None
    spec.folder = str(Path(folder))
    if storage:
        spec.storage = storage
    elif "***" in spec.storage:
        raise ConfigError(f"{file}: the storage password is not kept; pass --storage URL again")
    return spec


def open_storage(spec: StudySpec) -> Any:
    return make_storage(spec.storage_url(), spec.heartbeat_seconds, spec.grace_seconds)


def create_study(spec: StudySpec) -> optuna.Study:
    """Create the Optuna study (once) and write study.json; an existing one is continued."""
    spec.path.mkdir(parents=True, exist_ok=True)
    storage = open_storage(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            storage=storage, study_name=spec.name, directions=spec.plan.directions,
            load_if_exists=True,
        )  # fmt: skip
    if [d.name.lower() for d in study.directions] != spec.plan.directions:
        raise ConfigError(f"study '{spec.name}' exists in that storage with other objectives")
    write_study_json(spec, study, status="running")
    return study


def load_study(spec: StudySpec, worker: int = 0) -> optuna.Study:
    """Load the study for one worker, with that worker's own seeded sampler and the pruner."""
    from fathom.tuning.choices import make_pruner

    multi = len(spec.plan.directions) > 1
    sampler = make_sampler(spec.sampler, spec.plan.space, spec.seed + 1000 * worker, multi)
    pruner = make_pruner(spec.pruner if not multi else "none", epochs_of(spec.plan.base))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.load_study(
            study_name=spec.name, storage=open_storage(spec), sampler=sampler, pruner=pruner
        )


def epochs_of(config: dict[str, Any]) -> int:
    return int((config.get("train") or {}).get("epochs", 10))


def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best trial (one objective) or the Pareto front (several), best metric first."""
    if len(study.directions) == 1:
        return ranked(study)[:1]
    front = study.best_trials
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return sorted(front, key=lambda trial: trial.values[0], reverse=maximize)


def write_study_json(spec: StudySpec, study: optuna.Study, status: str) -> dict[str, Any]:
    trials = [trial_summary(t) for t in study.get_trials(deepcopy=False) if not is_surplus(t)]
    best = [trial_summary(trial) for trial in best_trials(study)]
    record = {
        **spec.to_dict(), "status": status, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "best": best[0] if best else None, "pareto_front": best if len(best) > 1 else None,
        "trial_list": trials,
    }  # fmt: skip
    atomic_write_json(spec.path / STUDY_FILE, record)
    return record


def finish_study(
    spec: StudySpec,
    study: optuna.Study,
    extra_html: str = "",
    report: bool = True,
    status: str = "finished",
) -> dict[str, Any]:
    """study.json with the best trial, best.yaml and the HTML reports (unless ``report`` is off)."""
    from fathom.tuning.report import write_study_report

    best = best_trials(study)
    if best:
        write_best_config(spec.path, best[0])
    record = write_study_json(spec, study, status=status)
    if report:
        write_top_reports(study, spec.keep_runs)
        write_study_report(spec, study, {**record, "extra_html": extra_html})
    return record
