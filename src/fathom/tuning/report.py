"""The study report: Optuna's matplotlib plots and a table of trials, in one HTML page.

Plots (``optuna.visualization.matplotlib``): optimisation history, parameter importances,
parallel coordinates, slice and contour; the Pareto front for a multi-objective study. A plot
that needs more than the study has (importances with one complete trial, a contour with one
parameter) is left out with the reason in the page. The contour and slice plots show the most
important parameters only (``CONTOUR_PARAMS``, ``SLICE_PARAMS``): a contour for every pair of
a wide search space is a grid of interpolated subplots that took longer to draw than the
trials took to train.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from optuna.visualization import matplotlib as optuna_plots  # noqa: E402

from fathom.files import atomic_write_text  # noqa: E402

PLOTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "history": ("optimisation history", optuna_plots.plot_optimization_history),
    "importances": ("parameter importances", optuna_plots.plot_param_importances),
    "parallel": ("parallel coordinates", optuna_plots.plot_parallel_coordinate),
    "slice": ("slice", optuna_plots.plot_slice),
    "contour": ("contour", optuna_plots.plot_contour),
}
CONTOUR_PARAMS = 3  # 3 pairs of subplots
SLICE_PARAMS = 6


def draw_plots(study: optuna.Study, folder: Path, names: list[str]) -> dict[str, str]:
    """PNG files of the study's plots; ``{name: file or 'not drawn: reason'}``."""
    folder.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "unique value length" notes per plot
    multi = len(study.directions) > 1
    ranked = ranked_params(study, multi)
    drawn: dict[str, str] = {}
    for key, (_title, function) in PLOTS.items():
        kwargs: dict[str, Any] = {}
        if key in ("contour", "slice") and ranked:
            kwargs["params"] = ranked[: CONTOUR_PARAMS if key == "contour" else SLICE_PARAMS]
        if multi:
            kwargs["target"] = lambda trial: trial.values[0]
            kwargs["target_name"] = names[0]
        elif key not in ("importances",):
            kwargs["target_name"] = names[0]
        drawn[key] = save_plot(lambda f=function, k=kwargs: f(study, **k), folder / f"{key}.png")
    if multi:
        drawn["pareto"] = save_plot(
            lambda: optuna_plots.plot_pareto_front(study, target_names=names),
            folder / "pareto.png",
        )
    return drawn


def ranked_params(study: optuna.Study, multi: bool) -> list[str]:
    """The study's parameter names, most important first (fANOVA on the first objective); in
    name order while importances cannot be computed yet (fewer than two complete trials)."""
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    names = sorted({name for trial in trials for name in trial.params})
    if len(trials) < 2:
        return names
    target = (lambda trial: trial.values[0]) if multi else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ranked = list(optuna.importance.get_param_importances(study, target=target))
    except Exception:  # noqa: BLE001 - too few complete trials, or a single-valued parameter
        return names
    return ranked + [name for name in names if name not in ranked]


def save_plot(draw: Callable[[], Any], file: Path) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            axes = draw()
    except Exception as error:  # noqa: BLE001 - optuna refuses plots the study cannot give yet
        plt.close("all")
        return f"not drawn: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    figure = np.ravel(axes)[0].figure
    figure.set_size_inches(
        max(figure.get_size_inches()[0], 7), max(figure.get_size_inches()[1], 4.5)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure.tight_layout()
    figure.savefig(file, dpi=90)
    plt.close(figure)
    return file.name


def write_study_report(spec: Any, study: optuna.Study, record: dict[str, Any]) -> Path:
    """report.html in the study folder (plots in plots/)."""
    names = [spec.plan.metric, *spec.plan.costs]
    drawn = draw_plots(study, spec.path / "plots", names)
    figures = []
    for key, value in drawn.items():
        title = PLOTS[key][0] if key in PLOTS else "Pareto front"
        if value.startswith("not drawn"):
            figures.append(f"<p><b>{title}</b>: {html.escape(value)}</p>")
        else:
            figures.append(f'<figure><img src="plots/{value}" alt="{title}">'
                           f"<figcaption>{title}</figcaption></figure>")  # fmt: skip
    page = PAGE.format(
        name=html.escape(spec.name),
        summary=summary_table(record, names),
        figures="\n".join(figures),
        trials=trials_table(record["trial_list"], names),
        extra=record.get("extra_html", ""),
    )
    path = spec.path / "report.html"
    atomic_write_text(path, page)
    return path


def summary_table(record: dict[str, Any], names: list[str]) -> str:
    best = record.get("best") or {}
    states: dict[str, int] = {}
    for trial in record["trial_list"]:
        states[trial["state"]] = states.get(trial["state"], 0) + 1
    rows = [
        ("sampler", record["sampler"]), ("pruner", record["pruner"]),
        ("storage", record["storage_url"]), ("trials", ", ".join(f"{v} {k}" for k, v in states.items())),
        ("objectives", ", ".join(names)),
        ("best trial", best.get("number")), ("best values", best.get("values")),
        ("best parameters", best.get("params")),
    ]  # fmt: skip
    return "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )


def trials_table(trials: list[dict[str, Any]], names: list[str]) -> str:
    header = "".join(f"<th>{html.escape(n)}</th>" for n in ["#", "state", *names, "parameters",
                                                            "note"])  # fmt: skip
    rows = []
    for trial in trials:
        values = trial.get("values") or [None] * len(names)
        cells = [trial["number"], trial["state"], *[_number(v) for v in values],
                 trial.get("params"), trial.get("reason") or ""]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _number(value: Any) -> str:
    return f"{value:.5g}" if isinstance(value, float) else str(value)


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>study {name}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:13px}}figure{{display:inline-block;margin:.5em}}img{{max-width:520px}}
</style></head><body>
<h1>Study {name}</h1>
<table>{summary}</table>
{extra}
<h2>Plots</h2>
{figures}
<h2>Trials</h2>
{trials}
</body></html>
"""


def architecture_section(study: optuna.Study, folder: Path, winner: dict[str, Any]) -> str:
    """The architecture search's part of the report: accuracy against latency with the Pareto
    front, and the chosen architecture with its re-trained result."""
    points = [
        (t.user_attrs["latency_ms"], t.values[0], t.number)
        for t in study.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.COMPLETE and "latency_ms" in t.user_attrs
    ]
    image = ""
    if points:
        maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        front = pareto_front(points, maximize)
        figure, axes = plt.subplots(figsize=(7, 4.5))
        axes.scatter([p[0] for p in points], [p[1] for p in points], c="#999", label="trials")
        axes.plot(
            [p[0] for p in front], [p[1] for p in front], "o-", c="#c33", label="Pareto front"
        )
        axes.set_xlabel("CPU latency, batch 1 (ms)")
        axes.set_ylabel(f"validation {winner.get('metric', 'metric')}")
        axes.legend()
        (folder / "plots").mkdir(parents=True, exist_ok=True)
        figure.tight_layout()
        figure.savefig(folder / "plots" / "accuracy_latency.png", dpi=90)
        plt.close(figure)
        image = '<figure><img src="plots/accuracy_latency.png" alt="Pareto front"><figcaption>' \
                "accuracy against latency; red: the Pareto front</figcaption></figure>"  # fmt: skip
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in winner.items()
    )
    return f"<h2>Architecture search</h2>{image}<h3>Chosen architecture</h3><table>{rows}</table>"


def pareto_front(
    points: list[tuple[float, float, int]], maximize: bool
) -> list[tuple[float, float, int]]:
    """Points no other point beats on both latency (lower) and the metric."""
    front: list[tuple[float, float, int]] = []
    for point in sorted(points, key=lambda p: (p[0], -p[1] if maximize else p[1])):
        if not front or (point[1] > front[-1][1] if maximize else point[1] < front[-1][1]):
            front.append(point)
    return front
