"""Optuna's samplers, pruners and storages, by the names ``fathom tune`` takes.

Nothing here samples or prunes: each name maps to an Optuna class (grid, random, TPE, the
Gaussian-process sampler, CMA-ES, NSGA-II; the median and Hyperband pruners). Storage is an
``RDBStorage`` (SQLite in the study folder, or a PostgreSQL URL) with heartbeats, so a trial
whose worker died is marked failed and queued again instead of staying "running" forever.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from fathom.errors import ConfigError, closest
from fathom.tuning.space import SearchSpace

SAMPLERS = ("tpe", "random", "grid", "gp", "cmaes", "nsga2")
PRUNERS = ("median", "hyperband", "halving", "none")


def make_sampler(name: str, space: SearchSpace | None, seed: int | None, multi: bool) -> Any:
    """The Optuna sampler called ``name``, seeded (each worker passes its own seed)."""
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler '{name}'{closest(name, SAMPLERS)}; choose from "
                          f"{', '.join(SAMPLERS)}")  # fmt: skip
    if multi and name not in ("nsga2", "random", "tpe", "grid"):
        raise ConfigError(f"sampler '{name}' optimises one objective; use nsga2 for several")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "grid":
            if space is None:
                raise ConfigError("the grid sampler needs a search space")
            return optuna.samplers.GridSampler(space.grid(), seed=seed)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        if name == "cmaes":  # categorical keys fall back to an independent (random) draw
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def make_pruner(name: str, max_epochs: int) -> Any:
    """The Optuna pruner called ``name``; it sees the validation metric after every epoch."""
    if name not in PRUNERS:
        raise ConfigError(f"unknown pruner '{name}'{closest(name, PRUNERS)}; choose from "
                          f"{', '.join(PRUNERS)}")  # fmt: skip
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_epochs, 2))
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def make_storage(url: str, heartbeat_seconds: int = 10, grace_seconds: int = 30) -> Any:
    """An ``RDBStorage`` with heartbeats: a trial silent for ``grace_seconds`` fails and is re-queued
    once (optuna's ``RetryHeartbeatStaleTrialCallback``)."""
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):  # several processes write one file: wait for the lock
        engine = {"connect_args": {"timeout": 120}}
    else:
        engine = {"pool_pre_ping": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=heartbeat_seconds,
                grace_period=grace_seconds, heartbeat_stale_trial_callback=retry,
            )  # fmt: skip
        except (ImportError, ModuleNotFoundError) as error:
            raise ConfigError(f"storage '{redact(url)}' needs a driver: {error}") from None
        except Exception as error:  # sqlalchemy's OperationalError, ArgumentError, ...
            first = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise ConfigError(f"cannot open storage '{redact(url)}': {first}") from None


def redact(url: str) -> str:
    """A storage URL without its password, for messages and study.json."""
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
