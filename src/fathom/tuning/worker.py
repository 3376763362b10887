"""A worker: loads the study (never creates it) and runs trials until the study has enough.

Workers share nothing but the storage. Before each trial a worker counts the study's trials:
finished ones (complete, pruned, or failed for a reason of their own) count toward the target;
a trial failed because its worker died (heartbeat expired, no reason recorded) does not, since
Optuna queues it again and the retry counts instead. So no trial is lost or counted twice.
Running trials are awaited rather than duplicated, so the study stops at the target. Two workers
that count at the same moment may both start a trial for the last place: the storage numbers
trials atomically, so each trial checks its number against those ahead of it before it trains,
and the later one ends at once as a surplus trial (FAIL, ``surplus`` set) counted nowhere.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from fathom.errors import FathomError
from fathom.tuning.runs import strip_outside_top

ProgressPrinter = Callable[[str], None]


@dataclass(frozen=True)
class Counts:
    finished: int
    running: int
    waiting: int


def count_trials(study: optuna.Study) -> Counts:
    trials = study.get_trials(deepcopy=False)
    finished = sum(1 for trial in trials if counts_as_finished(trial))
    running = sum(1 for trial in trials if trial.state == TrialState.RUNNING)
    waiting = sum(1 for trial in trials if trial.state == TrialState.WAITING)
    return Counts(finished, running, waiting)


class SurplusTrial(Exception):
    """A trial that found the study's target already claimed: it ends before it trains."""


def is_surplus(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get("surplus"))


class WithinTarget:
    """``objective``, run only if fewer than ``target`` trials that count (finished, running or
    waiting) are numbered before this one; ``surplus`` says whether the last call was one."""

    def __init__(self, objective: Callable[[optuna.Trial], Any], target: int) -> None:
        self.objective, self.target, self.surplus = objective, target, False

    def __call__(self, trial: optuna.Trial) -> Any:
        ahead = [
            other for other in trial.study.get_trials(deepcopy=False)
            if other.number < trial.number and not is_surplus(other)
            and (counts_as_finished(other) or other.state in (TrialState.RUNNING, TrialState.WAITING))
        ]  # fmt: skip
        self.surplus = len(ahead) >= self.target
        if self.surplus:
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"the study already has its {self.target} trials")
        return self.objective(trial)


def counts_as_finished(trial: FrozenTrial) -> bool:
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs


def run_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    target: int,
    *,
    deadline: float | None = None,
    keep_runs: int = 3,
    poll_seconds: float = 1.0,
    printer: ProgressPrinter = print,
    before_trial: Callable[[optuna.Study], None] | None = None,
) -> int:
    """Run trials until ``target`` trials are finished or ``deadline`` (time.time()) passes;
    ``before_trial`` may enqueue the next parameters (regularised evolution). Returns how many
    trials this worker ran."""
    ran, seen = 0, set()
    report = ProgressLine(study, target, printer)
    while deadline is None or time.time() < deadline:
        beat_once(study, seen)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        counts = count_trials(study)
        if counts.finished >= target:
            break
        if counts.waiting == 0 and counts.finished + counts.running >= target:
            time.sleep(poll_seconds)  # the last trials run elsewhere (or wait for a heartbeat)
            continue
        if before_trial is not None:
            before_trial(study)  # a strategy may enqueue the next trial's parameters
        claimed = WithinTarget(objective, target)
        study.optimize(claimed, n_trials=1, catch=(FathomError, SurplusTrial), callbacks=[report])
        ran += not claimed.surplus
        strip_outside_top(study, keep_runs)
    return ran


def beat_once(study: optuna.Study, seen: set[int]) -> None:
    """One heartbeat for each running trial, the first time this worker sees it. Optuna calls a
    trial stale only after it has a heartbeat, and a worker killed between creating its trial and
    the trial's first heartbeat leaves none: that trial would be waited for forever. With this one
    beat it goes stale a grace period later if its worker is gone; a live worker beats on."""
    storage = study._storage  # noqa: SLF001 - optuna's public fail_stale_trials reads it too
    if not hasattr(storage, "record_heartbeat"):
        return
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.number not in seen:
            seen.add(trial.number)
            storage.record_heartbeat(trial._trial_id)  # noqa: SLF001 - the storage's own key


class ProgressLine:
    """One line per finished trial: number, state, value, parameters, best so far."""

    def __init__(self, study: optuna.Study, target: int, printer: ProgressPrinter) -> None:
        self.target = target
        self.printer = printer
        self.multi = len(study.directions) > 1

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if not is_surplus(trial):
            self.printer(progress_text(study, trial, self.target, self.multi))


def progress_text(study: optuna.Study, trial: FrozenTrial, target: int, multi: bool) -> str:
    finished = count_trials(study).finished
    state = trial.state.name.lower()
    if trial.values:
        shown = ", ".join(f"{value:.4g}" for value in trial.values)
    else:
        shown = (
            trial.user_attrs.get("fail_reason")
            or trial.user_attrs.get("over_budget")
            and "over budget"
            or ""
        )
    params = " ".join(f"{key}={_short(value)}" for key, value in trial.params.items())
    best = ""
    if not multi:
        try:
            best = f" | best {study.best_value:.4g} (trial {study.best_trial.number})"
        except ValueError:
            best = ""
    return f"[{finished}/{target}] trial {trial.number} {state}: {shown} {params}{best}".rstrip()


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
