"""``RUN/card/card.html``: the report card as one self-contained page in the report's style."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from fathom.report import Section, figure_html, write_page
from fathom.report.plots import read_json


def _paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def _summary(card: dict[str, Any]) -> Section:
    metrics = card["accuracy"].get("metrics") or {}
    rows = [
        ["accuracy (test)", metrics.get("accuracy")],
        ["macro F1", card["accuracy"].get("macro_f1")],
    ]
    calibration = card.get("calibration") or {}
    rows.append(["ECE before temperature scaling", calibration.get("before", {}).get("ece")])
    if calibration.get("after"):
        rows.append(
            [f"ECE after (T = {calibration['temperature']:.3f})", calibration["after"]["ece"]]
        )
    robustness = card.get("robustness") or {}
    for name, value in (robustness.get("accuracy") or {}).items():
        rows.append([f"accuracy under {name} at ε = {robustness['eps']:.4g}", value])
    if robustness.get("corruptions"):
        rows.append(["mean corruption error", robustness["corruptions"]["mean_corruption_error"]])
    fairness = card.get("fairness") or {}
    if "demographic_parity_difference" in fairness:
        rows.append([f"demographic parity difference ({fairness['attribute']})",
                     fairness["demographic_parity_difference"]])  # fmt: skip
    size = card["size"]
    rows += [
        ["parameters", size["parameters"]],
        ["latency at batch 1 (ms)", size["latency_ms_batch_1"]],
    ]
    return Section("Summary", headers=["Measure", "Value"], rows=rows)


def _per_class(card: dict[str, Any]) -> Section | None:
    rows = card["accuracy"].get("per_class") or []
    if not rows:
        return None
    headers = list(rows[0])
    return Section(
        "Per-class metrics (test)", headers=headers, rows=[[r[h] for h in headers] for r in rows]
    )


def _calibration(card: dict[str, Any], folder: Path) -> Section:
    part = card["calibration"]
    html = _paragraph("Expected and maximum calibration error over 15 equal-width confidence bins, "
                      "negative log-likelihood and Brier score on the test split.")  # fmt: skip
    if part.get("note"):
        html += _paragraph(f"Temperature scaling not fitted: {part['note']}.")
    if (folder / "reliability.png").exists():
        html += f'<div class="figures">{figure_html(folder / "reliability.png", "reliability diagram")}</div>'
    rows = [[stage, *(part[stage][k] for k in ("ece", "mce", "nll", "brier", "accuracy"))]
            for stage in ("before", "after") if part.get(stage)]  # fmt: skip
    return Section("Calibration", html, ["", "ECE", "MCE", "NLL", "Brier", "accuracy"], rows)


def _robustness(card: dict[str, Any], folder: Path) -> Section:
    part = card.get("robustness")
    if not part or part.get("note"):
        return Section("Robustness", _paragraph((part or {}).get("note") or "not measured"))
    html = _paragraph(f"White-box attacks on the first {part['examples']} test examples, ε in pixel "
                      "units (L∞); corruptions at severities 1-5, generated from a seed.")  # fmt: skip
    if (folder / "robustness.png").exists():
        html += f'<div class="figures">{figure_html(folder / "robustness.png", "robustness curve")}</div>'
    corruptions = part["corruptions"]
    rows = [
        [name, *values, 1 - sum(values) / len(values)]
        for name, values in corruptions["accuracy"].items()
    ]
    headers = ["Corruption", *(f"severity {s}" for s in range(1, 6)), "mean error"]
    return Section("Robustness", html, headers, rows)


def _fairness(card: dict[str, Any]) -> Section | None:
    part = card.get("fairness")
    if not part:
        return None
    keys = [k for k in ("demographic_parity_difference", "demographic_parity_ratio",
                        "equalized_odds_difference") if k in part]  # fmt: skip
    html = _paragraph(f"By '{part['attribute']}' on the {part['split']} split (fairlearn MetricFrame). "
                      + "; ".join(f"{k.replace('_', ' ')} {part[k]:.4f}" for k in keys))  # fmt: skip
    metrics = list(next(iter(part["by_group"].values())))
    rows = [[group, *(values[m] for m in metrics)] for group, values in part["by_group"].items()]
    return Section("Fairness", html, ["Group", *(m.replace("_", " ") for m in metrics)], rows)


def _size(card: dict[str, Any]) -> Section:
    keys = ["parameters", "weights_bytes", "latency_ms_batch_1", "latency_ms_batch_64", "threads"]
    columns = [("this run", card["size"])]
    if card.get("size_before"):
        columns.insert(0, (f"before ({card['size_before']['run']})", card["size_before"]))
    rows = [[key.replace("_", " "), *(values.get(key) for _, values in columns)] for key in keys]
    return Section("Size and latency (this CPU)", headers=["", *(n for n, _ in columns)], rows=rows)


def _doctor(card: dict[str, Any]) -> Section:
    diagnoses = card.get("doctor")
    if diagnoses is None:
        return Section("The doctor's verdict", _paragraph("No diagnosis saved with this run."))
    if not diagnoses:
        return Section(
            "The doctor's verdict", _paragraph("No problems found in the training statistics.")
        )
    rows = [[d["title"], d["evidence"], d["remedy"]] for d in diagnoses]
    return Section("The doctor's verdict", headers=["Problem", "Evidence", "Remedy"], rows=rows)


def write_card_page(run_dir: Path, card: dict[str, Any]) -> Path:
    """Render ``card`` (from ``make_card``) to RUN/card/card.html."""
    folder = Path(run_dir) / "card"
    run = {**(read_json(Path(run_dir) / "run.json") or {})}
    run["name"] = f"{run.get('name') or Path(run_dir).name} · report card"
    sections = [_summary(card), _per_class(card), _calibration(card, folder), _robustness(card, folder),
                _fairness(card), _size(card), _doctor(card)]  # fmt: skip
    return write_page(
        folder / "card.html", run, Path(run_dir), [s for s in sections if s is not None]
    )


def add_card_to_report(run_dir: Path, card: dict[str, Any]) -> Path:
    """The card's summary and figures as a section of RUN/report.html (re-written)."""
    from fathom.report import save_section, write_report

    summary = _summary(card)
    images = [f"card/{name}" for name in ("reliability.png", "robustness.png")
              if (Path(run_dir) / "card" / name).exists()]  # fmt: skip
    save_section(run_dir, "trust_card", "Report card (trust)", text="The full card: card/card.html.",
                 headers=summary.headers, rows=summary.rows, images=images)  # fmt: skip
    return write_report(run_dir)
