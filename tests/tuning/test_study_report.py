"""The study report's plots: contour and slice show the most important parameters only."""

from __future__ import annotations

import optuna
import pytest

from fathom.tuning import report
from fathom.tuning.report import CONTOUR_PARAMS, SLICE_PARAMS, draw_plots, ranked_params


def study_where_only_x_matters(trials: int = 12) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        noise = [trial.suggest_float(f"p{i}", 0.0, 1.0) for i in range(5)]
        return (trial.suggest_float("x", -1.0, 1.0) ** 2) * 100 + 1e-3 * sum(noise)

    study.optimize(objective, n_trials=trials)
    return study


def test_the_parameter_that_drives_the_objective_ranks_first() -> None:
    ranked = ranked_params(study_where_only_x_matters(), multi=False)
    assert ranked[0] == "x" and sorted(ranked) == ["p0", "p1", "p2", "p3", "p4", "x"]


def test_too_few_trials_rank_in_name_order() -> None:
    assert ranked_params(study_where_only_x_matters(1), multi=False) == [
        "p0", "p1", "p2", "p3", "p4", "x"
    ]  # fmt: skip


def test_contour_and_slice_draw_only_the_top_parameters(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: dict[str, list[str]] = {}
    for key in ("contour", "slice"):
        title, function = report.PLOTS[key]

        def recording(study, key=key, function=function, **kwargs):
            asked[key] = kwargs["params"]
            return function(study, **kwargs)

        monkeypatch.setitem(report.PLOTS, key, (title, recording))
    drawn = draw_plots(study_where_only_x_matters(), tmp_path, ["loss"])
    assert drawn["contour"] == "contour.png" and drawn["slice"] == "slice.png"
    assert len(asked["contour"]) == CONTOUR_PARAMS and asked["contour"][0] == "x"
    assert len(asked["slice"]) == SLICE_PARAMS
