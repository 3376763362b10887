"""A self-contained ``RUN/report.html``: inline CSS, figures as data URIs, no network, no JavaScript."""

from __future__ import annotations

import base64
import contextlib
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from fathom.files import atomic_write_text
from fathom.report import plots
from fathom.report.plots import is_number, metric_label
from fathom.report.sections import SECTIONS_FOLDER

_CSS = (Path(__file__).parent / "report.css").read_text(encoding="utf-8")


@dataclass
class Section:
    """An extra part of the report, e.g. from a later feature.

    ``html`` is a trusted fragment inserted as is; ``rows`` (with optional ``headers``) become a
    table below it, every cell escaped and numbers formatted.
    """

    title: str
    html: str = ""
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[Any]] = ()


def format_value(value: Any) -> str:
    """Integers with thousands separators, floats to four decimals, anything else as text."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not is_number(value):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4f}"


def _duration(seconds: Any) -> str | None:
    if not is_number(seconds):
        return None
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"


def _parameters(count: Any) -> str | None:
    if not is_number(count):
        return None
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if count >= scale:
            return f"{int(count):,} ({count / scale:.2f} {suffix})"
    return f"{int(count):,}"


def _timestamp(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%d %H:%M") + (f" {moment.tzname()}" if moment.tzinfo else "")


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    css_class: str = "",
    footer: Sequence[Sequence[Any]] = (),
) -> str:
    """An escaped table; ``footer`` rows (e.g. averages) go in a highlighted ``<tfoot>``."""
    head = "".join(f"<th>{escape(str(header))}</th>" for header in headers)
    parts = [f"<thead><tr>{head}</tr></thead>" if head else "", f"<tbody>{_rows(rows)}</tbody>"]
    parts.append(f"<tfoot>{_rows(footer)}</tfoot>" if footer else "")
    return f'<div class="table-wrap"><table class="{css_class}">{"".join(parts)}</table></div>'


def _rows(rows: Sequence[Sequence[Any]]) -> str:
    cells = ("".join(f"<td>{escape(format_value(value))}</td>" for value in row) for row in rows)
    return "".join(f"<tr>{row}</tr>" for row in cells)


def _part(run: dict[str, Any], key: str) -> dict[str, Any]:
    """``run[key]`` when it is a mapping (``data``, ``model``, ``best`` ...), else an empty one."""
    value = run.get(key)
    return value if isinstance(value, dict) else {}


def _image(path: Path, caption: str, wide: bool = False) -> str:
    """An embedded PNG shown at its natural size (pixels / dpi × 96), so every figure's text matches."""
    payload = path.read_bytes()
    with Image.open(io.BytesIO(payload)) as image:
        width = round(image.width * 96 / float((image.info.get("dpi") or (96,))[0] or 96))
    encoded = base64.b64encode(payload).decode("ascii")
    css_class = ' class="wide"' if wide else ""
    return (
        f'<figure{css_class}><img src="data:image/png;base64,{encoded}" style="width:{width}px" '
        f'alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
    )


def _header(run: dict[str, Any], run_dir: Path) -> tuple[str, str]:
    """The page banner, and a notice for runs that are not completed (or carry a message)."""
    name = str(run.get("name") or run_dir.name)
    status = str(run.get("status") or "unknown")
    model = _part(run, "model")
    data = _part(run, "data")
    facts = [run.get("task"), data.get("name"), model.get("name"), _timestamp(run.get("created"))]
    meta = " · ".join(escape(str(fact)) for fact in facts if fact)
    banner = {
        "running": "This run is still in progress: the report shows what was written so far.",
        "stopped": "This run was stopped before it finished.",
        "failed": "This run failed.",
    }.get(status, "")
    message = " ".join(part for part in (banner, str(run.get("message") or "")) if part)
    notice = f'<div class="notice {escape(status)}">{escape(message)}</div>' if message else ""
    header = (
        f'<header><div class="inner"><p class="eyebrow">Fathom run report</p>'
        f'<h1>{escape(name)} <span class="badge {escape(status)}">{escape(status)}</span></h1>'
        f'<p class="meta">{meta}</p></div></header>'
    )
    return header, notice


def _tiles(run: dict[str, Any], evaluation: dict[str, Any] | None) -> str:
    """Headline numbers: final evaluation metrics, best validation metric, epochs, duration."""
    metrics, split = (
        (evaluation or {}).get("metrics") or {},
        (evaluation or {}).get("split", "test"),
    )
    keys = [key for key in ("accuracy", "top5_accuracy", "r2", "rmse", "mae") if key in metrics]
    tiles = [
        (f"{split} {metric_label(k)}", format_value(metrics[k]), "final evaluation")
        for k in keys[:2]
    ]
    best = _part(run, "best")
    if is_number(best.get("value")):
        label = f"best {metric_label(str(best.get('metric', '')))}"
        tiles.append((label, format_value(best["value"]), f"epoch {best.get('epoch', '?')}"))
    if run.get("epochs_completed") is not None:
        steps = f"{format_value(run['steps'])} steps" if is_number(run.get("steps")) else ""
        tiles.append(("epochs", format_value(run["epochs_completed"]), steps))
    duration = _duration(run.get("duration_seconds"))
    if duration:
        tiles.append(("duration", duration, str(run.get("device") or "")))
    cells = "".join(
        f'<div class="tile"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="sub">{escape(sub)}</div></div>'
        for label, value, sub in tiles
    )
    return f'<div class="tiles">{cells}</div>' if cells else ""


def _names(values: Any, limit: int = 20) -> str | None:
    if not isinstance(values, list) or not values:
        return None
    shown = ", ".join(str(value) for value in values[:limit])
    return shown + (f", … ({len(values) - limit} more)" if len(values) > limit else "")


def _summary(run: dict[str, Any], records: list[dict], evaluation: dict | None) -> Section:
    """Headline tiles above a table of facts about the data, the model and the machine."""
    data, model = _part(run, "data"), _part(run, "model")
    speeds = sorted(
        r["samples_per_second"] for r in records if is_number(r.get("samples_per_second"))
    )
    shape = data.get("input_shape")
    rows = [
        ("Task", run.get("task") or data.get("task")),
        ("Dataset", data.get("name")),
        ("Input shape", " × ".join(str(size) for size in shape) if isinstance(shape, list) else None),
        ("Classes", _names(data.get("class_names")) or data.get("num_classes")),
        ("Features", _names(data.get("feature_names"))),
        ("Target", data.get("target_name")),
        ("Model", model.get("name")),
        ("Parameters", _parameters(model.get("parameters"))),
        ("Steps", run.get("steps")),
        ("Throughput", f"{speeds[len(speeds) // 2]:,.0f} samples/s (median)" if speeds else None),
        ("Device", run.get("device")),
        ("Precision", run.get("precision")),
        ("Seed", run.get("seed")),
        ("Created", _timestamp(run.get("created"))),
    ]  # fmt: skip
    facts = [(label, value) for label, value in rows if value not in (None, "")]
    return Section("Summary", _tiles(run, evaluation) + _table((), facts, "facts"))


def _results(records: list[dict], run_dir: Path) -> Section | None:
    columns: list[tuple[str, dict[str, Any]]] = []
    for kind, title in (("train", "Train (last logged)"), ("val", "Validation (last epoch)")):
        last = [record for record in records if record.get("kind") == kind]
        if last:
            columns.append((title, last[-1]))
    for split, title in (("val", "Validation (evaluation)"), ("test", "Test")):
        evaluation = plots.read_json(run_dir / f"evaluation-{split}.json") or {}
        if isinstance(evaluation.get("metrics"), dict):
            columns.append((title, evaluation["metrics"]))
    if not columns:
        return None
    names = ["loss", *plots.metric_names([values for _, values in columns])]
    names = [name for name in names if any(is_number(values.get(name)) for _, values in columns)]
    rows = [[metric_label(name), *(values.get(name) for _, values in columns)] for name in names]
    return Section("Results", _table(["Metric", *(title for title, _ in columns)], rows, "results"))


def _training(own_plots: dict[str, Path]) -> Section | None:
    figures = [(name, caption, wide) for name, caption, wide in (
        ("loss.png", "Loss: training (smoothed) and validation", False),
        ("learning_rate.png", "Learning-rate schedule", False),
        ("metrics.png", "Metrics: training and validation", True),
    ) if name in own_plots]  # fmt: skip
    if not figures:
        return None
    body = "".join(_image(own_plots[name], caption, wide) for name, caption, wide in figures)
    return Section("Training", f'<div class="figures">{body}</div>')


def _per_class_rows(per_class: dict[str, Any], names: list[Any]) -> tuple[list[list], list[list]]:
    """One row per class; macro and support-weighted averages when every value is a number."""
    columns = [per_class.get(key) or [] for key in ("precision", "recall", "f1", "support")]
    count = min(len(column) for column in columns)
    rows = [
        [names[i] if i < len(names) else i, *(column[i] for column in columns)]
        for i in range(count)
    ]
    if not count or not all(is_number(value) for row in rows for value in row[1:]):
        return rows, []
    supports, averages = [float(row[4]) for row in rows], []
    for label, weights in (("macro average", [1.0] * count), ("weighted average", supports)):
        scale = sum(weights) or 1.0
        means = [
            sum(w * row[k] for w, row in zip(weights, rows, strict=True)) / scale for k in (1, 2, 3)
        ]
        averages.append([label, *means, int(sum(supports))])
    return rows, averages


def _evaluation(evaluation: dict[str, Any] | None, own_plots: dict[str, Path]) -> Section | None:
    """The confusion matrix beside the per-class table (stacked when there are many classes)."""
    if evaluation is None:
        return None
    matrix = own_plots.get("confusion_matrix.png")
    side_by_side = matrix is not None and len(evaluation.get("confusion_matrix") or []) <= 12
    wide = "" if side_by_side else " wide"
    parts = [_image(matrix, "Confusion matrix", not side_by_side)] if matrix else []
    if "predictions.png" in own_plots:
        parts.append(_image(own_plots["predictions.png"], "Predictions", wide=True))
    per_class = evaluation.get("per_class")
    if isinstance(per_class, dict):
        rows, averages = _per_class_rows(per_class, list(evaluation.get("class_names") or []))
        headers = ["Class", "Precision", "Recall", "F1", "Support"]
        table = _table(headers, rows, "per-class", averages)
        parts.append(f'<div class="per-class{wide}"><h3>Per class</h3>{table}</div>')
    if not parts:
        return None
    layout = "figures evaluation" if side_by_side else "figures"
    title = f"Evaluation ({evaluation.get('split', 'test')} split)"
    return Section(title, f'<div class="{layout}">{"".join(parts)}</div>')


def _saved_sections(run_dir: Path) -> tuple[list[Section], set[str]]:
    """Sections stored with ``save_section``, and the images they show (kept out of "Other")."""
    sections, shown = [], set()
    for path in sorted((run_dir / SECTIONS_FOLDER).glob("*.json")):
        record = plots.read_json(path)
        if not isinstance(record, dict) or not record.get("title"):
            continue
        paragraphs = str(record.get("text") or "").split("\n\n")
        html = "".join(f"<p>{escape(part)}</p>" for part in paragraphs if part.strip())
        images = [run_dir / str(name) for name in record.get("images") or []]
        figures = [
            _image(image, image.stem.replace("_", " ")) for image in images if image.is_file()
        ]
        shown |= {image.name for image in images}
        if figures:
            html += f'<div class="figures">{"".join(figures)}</div>'
        rows = record.get("rows") or []
        sections.append(Section(str(record["title"]), html, record.get("headers") or (), rows))
    return sections, shown


def _other_figures(folder: Path, shown: set[str] = frozenset()) -> Section | None:
    extra = (
        sorted(
            path
            for path in folder.glob("*.png")
            if path.name not in plots.PLOT_FILES and path.name not in shown
        )
        if folder.is_dir()
        else []
    )
    if not extra:
        return None
    body = "".join(_image(path, path.stem.replace("_", " ").capitalize()) for path in extra)
    return Section("Other figures", f'<div class="figures">{body}</div>')


def _configuration(run_dir: Path) -> Section | None:
    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    with contextlib.suppress(yaml.YAMLError):
        text = yaml.safe_dump(yaml.safe_load(text), sort_keys=False, default_flow_style=False)
    return Section("Configuration", f'<pre class="code">{escape(text)}</pre>')


def _environment(run: dict[str, Any]) -> Section | None:
    versions = _part(run, "versions")
    rows = [(name, str(version)) for name, version in versions.items()]
    if run.get("git"):
        rows.append(("git", str(run["git"])))
    return Section("Environment", _table(["Component", "Version"], rows, "facts")) if rows else None


def _document(run: dict[str, Any], run_dir: Path, sections: Sequence[Section]) -> str:
    links, parts = [], []
    for index, section in enumerate(sections):
        anchor = f"s{index}-" + re.sub(r"[^a-z0-9]+", "-", section.title.lower()).strip("-")
        table = _table(section.headers, section.rows) if section.rows else ""
        links.append(f'<a href="#{anchor}">{escape(section.title)}</a>')
        parts.append(
            f'<section id="{anchor}"><h2>{escape(section.title)}</h2>{section.html}{table}</section>'
        )
    header, notice = _header(run, run_dir)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    version = escape(str((run.get("versions") or {}).get("fathom", "")))
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(str(run.get('name') or run_dir.name))} · Fathom report</title>"
        f"<style>{_CSS}</style></head><body>{header}<main>{notice}<nav>{''.join(links)}</nav>"
        f"{''.join(parts)}<footer>Generated by Fathom {version} on {generated}</footer></main></body></html>\n"
    )


def write_report(
    run_dir: str | os.PathLike[str], extra_sections: Sequence[Section] | None = None
) -> Path:
    """Make the plots and write ``RUN/report.html`` (atomically) from whatever the run folder holds.

    ``extra_sections`` and the sections stored with ``save_section`` are placed after the
    evaluation; other PNGs that features dropped into ``RUN/plots`` appear under "Other figures".
    """
    run_dir = plots.run_folder(run_dir)
    own_plots = {path.name: path for path in plots.make_plots(run_dir)}
    run = plots.read_json(run_dir / "run.json") or {}
    records = plots.read_metrics(run_dir / "metrics.jsonl")
    evaluation = plots.read_evaluation(run_dir)
    saved, shown = _saved_sections(run_dir)
    sections = [
        _summary(run, records, evaluation),
        _results(records, run_dir),
        _training(own_plots),
        _evaluation(evaluation, own_plots),
        *(extra_sections or ()),
        *saved,
        _other_figures(run_dir / "plots", shown),
        _configuration(run_dir),
        _environment(run),
    ]
    path = run_dir / "report.html"
    atomic_write_text(path, _document(run, run_dir, [s for s in sections if s is not None]))
    return path


def write_page(
    path: str | os.PathLike[str], run: dict[str, Any], run_dir: Path, sections: Sequence[Section]
) -> Path:
    """A page in the report's style (banner, navigation, sections) written atomically to ``path``;
    other one-page documents of a run (the trust card) use it."""
    path = Path(path)
    atomic_write_text(path, _document(run, Path(run_dir), list(sections)))
    return path


def figure_html(path: Path, caption: str, wide: bool = False) -> str:
    """An embedded PNG figure for a ``Section``'s ``html``."""
    return _image(path, caption, wide)
