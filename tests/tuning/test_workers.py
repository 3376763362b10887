"""Several worker processes on one study: SQLite, PostgreSQL, a worker killed with SIGKILL
mid-trial, and a whole study killed then resumed. No trial is lost or counted twice."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from fathom.api.tune import new_spec, tune, work
from fathom.assemble import resolve_config
from fathom.tuning.space import parse_space
from fathom.tuning.study import create_study, load_study
from fathom.tuning.worker import count_trials

TINY = ["data.limit=240", "train.epochs=2", "train.diagnostics=false", "model.channels=[4,8]"]
SPACE = {"optim.lr": {"log_uniform": [1e-3, 3e-2]}, "model.hidden": {"choice": [16, 32]}}
SRC = str(Path(__file__).resolve().parents[2] / "src")


def check_consistent(study: optuna.Study, target: int) -> None:
    trials = study.get_trials()
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert count_trials(study).finished == target
    assert len({t.number for t in trials}) == len(trials)


def two_workers(tmp_path: Path, storage: str | None, name: str) -> None:
    result = tune("digits", SPACE, overrides=TINY, trials=4, workers=2, storage=storage,
                  study=name, directory=tmp_path, pruner="none", quiet=True, report=False)  # fmt: skip
    finished = [t for t in result.record["trial_list"] if t["state"] == "complete"]
    assert len(finished) == 4
    # Both workers load the study and run; which ran how many trials depends on the machine's
    # load (a spawned worker can take seconds to import torch), so only the union is checked.
    assert {json_worker(Path(t["run"])) for t in finished} <= {0, 1}
    assert len({t["number"] for t in result.record["trial_list"]}) == 4


def json_worker(folder: Path) -> int:
    import json

    return json.loads((folder / "trial.json").read_text())["worker"]


def test_two_workers_on_sqlite(tmp_path):
    two_workers(tmp_path, None, "sqlite")
    assert (tmp_path / "sqlite" / "optuna.db").is_file()


def test_two_workers_on_postgresql(tmp_path):
    url = os.environ.get("FATHOM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("FATHOM_TEST_POSTGRES_URL is not set: .ci/run sets it once PostgreSQL starts")
    try:
        optuna.storages.RDBStorage(url)
    except Exception as error:  # noqa: BLE001 - any connection failure means no server here
        pytest.skip(f"PostgreSQL at {url.split('@')[-1]} cannot be reached: {error}")
    two_workers(tmp_path, url, f"pg-{uuid.uuid4().hex[:8]}")


def new_study(tmp_path: Path, trials: int):
    spec = new_spec(resolve_config(dataset="digits", overrides=TINY), parse_space(SPACE), "kill",
                    tmp_path, [], trials)  # fmt: skip
    spec.pruner, spec.heartbeat_seconds, spec.grace_seconds = "none", 1, 3
    create_study(spec)
    return spec


def wait_for_running(study: optuna.Study, worker: int | None) -> None:
    for _ in range(6000):
        running = [t for t in study.get_trials() if t.state == TrialState.RUNNING]
        if any(worker is None or t.user_attrs.get("worker") == worker for t in running):
            return
        time.sleep(0.05)
    raise AssertionError("no trial started")


def test_a_worker_killed_mid_trial_leaves_the_study_consistent(tmp_path):
    spec = new_study(tmp_path, trials=4)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=work, args=(spec.to_dict(), "", index, None, True))
               for index in range(2)]  # fmt: skip
    for process in workers:
        process.start()
    study = load_study(spec)
    wait_for_running(study, worker=0)
    os.kill(workers[0].pid, signal.SIGKILL)
    for process in workers:
        process.join()
    assert workers[0].exitcode == -signal.SIGKILL and workers[1].exitcode == 0
    trials = study.get_trials()
    lost = [t for t in trials if t.state == TrialState.FAIL and "fail_reason" not in t.user_attrs]
    assert len(lost) == 1  # failed by its heartbeat, then queued again
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == lost[0].number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == lost[0].params
    check_consistent(study, 4)


def test_a_killed_study_resumes(tmp_path):
    spec = new_study(tmp_path, trials=3)
    code = (f"import sys; sys.path.insert(0, {SRC!r}); from fathom.api.tune import work; "
            f"work({spec.to_dict()!r}, '', 0, None, True)")  # fmt: skip
    process = subprocess.Popen([sys.executable, "-c", code])
    study = load_study(spec)
    wait_for_running(study, worker=None)
    process.send_signal(signal.SIGKILL)
    process.wait()
    tune(resume=tmp_path / "kill", quiet=True, report=False)
    check_consistent(study, 3)


def test_two_workers_claiming_the_last_place_at_once_run_it_once() -> None:
    """Both counted 1 finished + 0 running < 2 and asked for a trial: the later number yields."""
    import optuna

    from fathom.tuning.worker import SurplusTrial, WithinTarget, count_trials

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    first, second = study.ask(), study.ask()  # two workers' trials, numbered 1 and 2
    ran = []
    claim_first = WithinTarget(lambda trial: ran.append(trial.number) or 0.5, target=2)
    claim_second = WithinTarget(lambda trial: ran.append(trial.number) or 0.5, target=2)
    with pytest.raises(SurplusTrial):
        claim_second(second)
    assert claim_second.surplus and second.user_attrs.get("surplus") is True
    study.tell(second, state=optuna.trial.TrialState.FAIL)
    study.tell(first, claim_first(first))
    assert ran == [1] and not claim_first.surplus
    assert count_trials(study).finished == 2


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_retried(tmp_path):
    """Optuna never calls a trial without a heartbeat stale; the next worker gives it one."""
    spec = new_study(tmp_path, trials=2)
    study = load_study(spec)
    study.ask()  # RUNNING, no heartbeat: as if its worker was killed right after creating it
    tune(resume=tmp_path / "kill", quiet=True, report=False, timeout=600)
    check_consistent(study, 2)
