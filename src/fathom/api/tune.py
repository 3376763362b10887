"""``fathom.tune`` and ``fathom.nas``: hyperparameter and architecture search on Optuna.

The process that starts a search creates the study once (study.json, the storage), then runs
the trials itself (one worker) or starts worker processes (``spawn``) that each load the study
and run trials until it has enough; at the end it writes best.yaml and the study report.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fathom.api.train import fit
from fathom.assemble import ConfigSource, load_data, make_task, resolve_config
from fathom.config import FathomConfig
from fathom.data.bundle import DataBundle
from fathom.errors import ConfigError
from fathom.runs import Run
from fathom.tuning.space import SearchSpace, check_keys, parse_space, read_space

if TYPE_CHECKING:  # Optuna, matplotlib and the study modules load when a search starts
    from fathom.tuning.study import StudySpec


@dataclass
class StudyResult:
    """A finished (or timed-out) study: its folder, best trial and best.yaml."""

    path: Path
    record: dict[str, Any]

    @property
    def best(self) -> dict[str, Any] | None:
        return self.record.get("best")

    @property
    def best_config(self) -> Path:
        return self.path / "best.yaml"

    @property
    def report(self) -> Path:
        return self.path / "report.html"


class CachedDataFit:
    """``fathom.fit`` that loads each dataset (data section + seed) once per worker process;
    the split is the same as a fresh load's, so a trial trains exactly as ``fathom train``.
    The HTML report waits for the end of the study, which writes it for the best trials.

    ``score_test=False`` (architecture search, whose winner is re-trained and scored): trials
    are judged on the validation split and never see the test split, which on MNIST cost each
    1-epoch proxy trial as much time again as a third of its training (10,000 images)."""

    def __init__(self, score_test: bool = True) -> None:
        self.bundles: dict[str, Any] = {}
        self.score_test = score_test

    def __call__(self, config: FathomConfig, callbacks: Iterable[Any] = ()) -> Run:
        key = json.dumps([config.data.model_dump(mode="json"), config.train.seed], sort_keys=True)
        if key not in self.bundles:
            self.bundles = {key: load_data(config)}  # keep one: a searched seed changes it
        bundle = self.bundles[key]
        if not self.score_test and bundle.val is not None:
            bundle = DataBundle(bundle.info, bundle.train, bundle.val, None)
        return fit(data=bundle, config=config, callbacks=callbacks, report=False)


def tune(
    data: str | None = None,
    space: str | Path | Mapping[str, Any] | None = None,
    *,
    config: ConfigSource = None,
    overrides: Iterable[str] = (),
    trials: int | None = None,
    workers: int = 1,
    storage: str | None = None,
    study: str | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    timeout: float | None = None,
    resume: str | Path | None = None,
    keep_runs: int = 3,
    seed: int = 0,
    costs: Iterable[str] = (),
    directory: str | Path = "studies",
    heartbeat_seconds: int = 10,
    grace_seconds: int = 30,
    quiet: bool = False,
    report: bool = True,
) -> StudyResult:
    """Search the ``space`` (a YAML file or mapping of config keys to distributions) around the
    config that ``fathom train`` would use for ``data``/``config``/``overrides``.

    ``costs`` (latency_ms, parameters, macs) make it a multi-objective study (use nsga2).
    ``resume`` continues the study in that folder (``trials`` then raises its target).
    ``report=False`` skips the HTML reports (the study's and its best trials').
    """
    from fathom.tuning.study import read_spec

    if resume is not None:
        spec = read_spec(resume, storage)
        spec.trials = trials or spec.trials
    else:
        if space is None:
            raise ConfigError("give a search space (--space space.yaml)")
        parsed = read_space(space) if isinstance(space, (str, Path)) else parse_space(space)
        base = resolve_config(config, dataset=data, overrides=overrides)
        check_space(parsed, base, space)
        spec = new_spec(base, parsed, study, directory, list(costs), trials or 20)
        spec.sampler, spec.pruner, spec.seed, spec.storage = sampler, pruner, seed, storage or ""
        spec.keep_runs, spec.heartbeat_seconds = keep_runs, heartbeat_seconds
        spec.grace_seconds = grace_seconds
    return run_study(spec, workers, timeout, quiet, report=report)


def check_space(space: SearchSpace, base: FathomConfig, source: Any) -> None:
    try:
        check_keys(space, base)
    except ConfigError as error:
        where = f"{source}: " if isinstance(source, (str, Path)) else ""
        raise ConfigError(f"{where}{error}") from None


def new_spec(
    base: FathomConfig,
    space: SearchSpace,
    name: str | None,
    directory: str | Path,
    costs: list[str],
    trials: int,
) -> StudySpec:
    """A new study's record: the metric and direction come from the data's task."""
    from fathom.tuning.study import StudySpec
    from fathom.tuning.trial import COST_OBJECTIVES, TrialPlan

    unknown = [cost for cost in costs if cost not in COST_OBJECTIVES]
    if unknown:
        raise ConfigError(
            f"unknown objective '{unknown[0]}'; choose from {', '.join(COST_OBJECTIVES)}"
        )
    if trials < 1:
        raise ConfigError(f"trials must be at least 1, got {trials}")
    bundle = load_data(base)
    if bundle.val is None or len(bundle.val) == 0:
        raise ConfigError(
            f"a search needs a validation split to compare trials on ({base.data.name} has none "
            f"with data.val_fraction={base.data.val_fraction}); the test split must not choose "
            "the winner: set data.val_fraction=0.1"
        )
    task = make_task(base, bundle.info)
    name = name or f"{base.data.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = Path(directory) / name
    if (folder / "study.json").exists():
        raise ConfigError(f"study folder {folder} exists; continue it with --resume {folder}")
    plan = TrialPlan(
        base=base.to_dict(), space=space, metric=task.monitor,
        direction="maximize" if task.monitor_mode == "max" else "minimize",
        trials_dir=str(folder / "trials"), costs=costs,
    )  # fmt: skip
    return StudySpec(name=name, folder=str(folder), plan=plan, trials=trials)


def run_study(
    spec: StudySpec,
    workers: int,
    timeout: float | None,
    quiet: bool,
    finish: bool = True,
    report: bool = True,
) -> StudyResult:
    """Create (or reopen) the study, run the workers, then write best.yaml and the report."""
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if spec.sampler == "grid":
        size = 1
        for values in spec.plan.space.grid().values():
            size *= len(values)
        spec.trials = min(spec.trials, size)
    import optuna

    from fathom.tuning.study import create_study, finish_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = create_study(spec)
    deadline = time.time() + timeout if timeout else None
    if workers == 1:
        work(spec.to_dict(), spec.storage, 0, deadline, quiet)
        lost: list[int] = []
    else:
        lost = run_processes(spec, workers, deadline, quiet)
    status = study_status(study, spec.trials, deadline, lost)
    if not finish:
        return StudyResult(spec.path, {})
    record = finish_study(spec, study, report=report, status=status)
    if not quiet:
        best = record.get("best") or {}
        print(f"study {spec.name}: best trial {best.get('number')} {best.get('values')} "
              f"{best.get('params')}\nbest config: {spec.path / 'best.yaml'}\n"
              f"report: {spec.path / 'report.html'}")  # fmt: skip
    return StudyResult(spec.path, record)


def study_status(study: Any, target: int, deadline: float | None, lost: list[int]) -> str:
    """finished, timed out, or interrupted (workers ended abnormally before the target: their
    trials fail by heartbeat and are queued again by ``--resume``)."""
    from fathom.tuning.worker import count_trials

    if count_trials(study).finished >= target:
        return "finished"
    if deadline is not None and time.time() >= deadline:
        return "timed out"
    if lost:
        print(f"{len(lost)} worker(s) ended abnormally (exit {lost}) before the study had its "
              "trials; continue it with --resume", file=sys.stderr)  # fmt: skip
    return "interrupted"


def run_processes(spec: StudySpec, workers: int, deadline: float | None, quiet: bool) -> list[int]:
    """``workers`` spawned processes, each loading the study; waits for all of them and returns
    the exit codes of those that ended abnormally."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=work,
            args=(spec.to_dict(), spec.storage, index, deadline, quiet),
            kwargs={"threads": max(1, (os.cpu_count() or 1) // workers)},
        )  # fmt: skip
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return [p.exitcode for p in processes if p.exitcode != 0]


def work(
    record: dict[str, Any],
    storage: str,
    worker: int,
    deadline: float | None = None,
    quiet: bool = False,
    threads: int | None = None,
) -> int:
    """One worker: load the study from ``record`` (study.json) and run trials until it has enough."""
    import optuna
    import torch

    from fathom.tuning.nas import RegularizedEvolution
    from fathom.tuning.study import StudySpec, load_study
    from fathom.tuning.trial import Objective
    from fathom.tuning.worker import run_worker

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one progress line per trial instead
    if threads:
        torch.set_num_threads(threads)
    names = set(StudySpec.__dataclass_fields__)
    spec = StudySpec.from_dict({key: value for key, value in record.items() if key in names})
    spec.storage = storage
    study = load_study(spec, worker)
    objective = Objective(spec.plan, CachedDataFit(score_test=spec.plan.family is None), worker)
    printer = (lambda line: None) if quiet else (lambda line: print(line, flush=True))
    strategy = None
    if spec.strategy == "evolution":
        population = int(spec.extra.get("population", 10))
        strategy = RegularizedEvolution(
            spec.plan.space, population, seed=spec.seed + worker
        ).propose
    return run_worker(
        study, objective, spec.trials, deadline=deadline, keep_runs=spec.keep_runs,
        poll_seconds=min(1.0, spec.heartbeat_seconds), printer=printer, before_trial=strategy,
    )  # fmt: skip


def nas(
    data: str | None = None,
    *,
    family: str = "cnn",
    trials: int = 40,
    strategy: str = "evolution",
    budget_latency_ms: float | None = None,
    budget_params: float | None = None,
    budget_macs: float | None = None,
    trial_epochs: int | None = None,
    trial_steps: int | None = None,
    config: ConfigSource = None,
    overrides: Iterable[str] = (),
    population: int = 10,
    retrain: bool = True,
    workers: int = 1,
    storage: str | None = None,
    study: str | None = None,
    timeout: float | None = None,
    resume: str | Path | None = None,
    seed: int = 0,
    directory: str | Path = "studies",
    quiet: bool = False,
    report: bool = True,
) -> StudyResult:
    """Search a ``family``'s architectures under the budgets, each trained for ``trial_epochs``
    (default a third of the recipe's epochs), cut at ``trial_steps`` optimizer steps if given (a
    cheaper proxy; the schedule ends there); then re-train the winner from scratch with the
    recipe (its run folder is ``<study>/winner``). ``strategy``: random (with successive-halving
    early stopping), evolution (regularised) or nsga2 (accuracy against latency).
    ``report=False`` skips the HTML reports (the study's, the winner's and the best trials')."""
    from fathom.tuning.study import read_spec

    if resume is not None:
        spec = read_spec(resume, storage)
        spec.trials = trials or spec.trials
    else:
        spec = nas_spec(data, family, trials, strategy, config, overrides, study, directory,
                        trial_epochs, trial_steps)  # fmt: skip
        budget = {"latency_ms": budget_latency_ms, "parameters": budget_params, "macs": budget_macs}
        spec.plan.budget = {k: v for k, v in budget.items() if v is not None or k == "latency_ms"}
        spec.seed, spec.storage, spec.keep_runs = seed, storage or "", 3
        spec.extra["population"] = population
    run_study(spec, workers, timeout, quiet, finish=False)
    return finish_architecture_search(spec, retrain, quiet, report)


def nas_spec(
    data: str | None, family: str, trials: int, strategy: str, config: ConfigSource,
    overrides: Iterable[str], study: str | None, directory: str | Path, trial_epochs: int | None,
    trial_steps: int | None = None,
) -> StudySpec:  # fmt: skip
    from fathom.tuning.nas import STRATEGIES, family_space

    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy '{strategy}'; choose from {', '.join(STRATEGIES)}")
    space = family_space(family)
    base = resolve_config(config, dataset=data, overrides=overrides)
    final_epochs, final_max_steps = base.train.epochs, base.train.max_steps
    base.train.epochs = trial_epochs or max(1, final_epochs // 3)
    if trial_steps is not None:
        if trial_steps < 1:
            raise ConfigError(f"--trial-steps must be at least 1, got {trial_steps}")
        base.train.max_steps = min(trial_steps, final_max_steps or trial_steps)
    costs = ["latency_ms"] if strategy == "nsga2" else []
    spec = new_spec(base, space, study, directory, costs, trials)
    spec.plan.family, spec.strategy = family, strategy
    spec.sampler = "nsga2" if strategy == "nsga2" else "random"
    spec.pruner = "halving" if strategy == "random" else "none"
    spec.extra = {"final_epochs": final_epochs, "final_max_steps": final_max_steps}
    return spec


def finish_architecture_search(
    spec: StudySpec, retrain: bool, quiet: bool, report: bool = True
) -> StudyResult:
    """Re-train the winner from scratch with the full recipe; the report shows the front."""
    from fathom.tuning.nas import choose_winner
    from fathom.tuning.report import architecture_section
    from fathom.tuning.study import finish_study, load_study
    from fathom.tuning.trial import trial_config

    study = load_study(spec)
    winner = choose_winner(study)
    details: dict[str, Any] = {}
    if winner is not None:
        config = trial_config(spec.plan, winner.params, winner.number)
        config.train.epochs = int(spec.extra.get("final_epochs", config.train.epochs))
        config.train.max_steps = spec.extra.get("final_max_steps", config.train.max_steps)
        config.run.dir, config.run.name = str(spec.path), "winner"
        config.run.progress = "none" if quiet else "auto"
        details = {"trial": winner.number, "metric": spec.plan.metric,
                   "search value": winner.values[0], "model": config.model.to_dict()
                   if hasattr(config.model, "to_dict") else config.model.model_dump()}  # fmt: skip
        details.update({k: winner.user_attrs[k] for k in ("latency_ms", "parameters", "macs")
                        if k in winner.user_attrs})  # fmt: skip
        if retrain and not (spec.path / "winner" / "model.safetensors").exists():
            run = fit(config=config, report=report)
            details["winner run"] = str(run.path)
            details["winner test"] = run.summary.get("test")
    spec.extra["winner"] = details
    extra = architecture_section(study, spec.path, details) if details and report else ""
    record = finish_study(spec, study, extra_html=extra, report=report)
    if not quiet:
        print(f"architecture search {spec.name}: winner trial {details.get('trial')} "
              f"{details.get('model')}\nwinner run: {details.get('winner run')}"
              + (f"\nreport: {spec.path / 'report.html'}" if report else ""))  # fmt: skip
    return StudyResult(spec.path, record)


__all__ = ["StudyResult", "nas", "tune", "work"]
