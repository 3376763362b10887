"""The doctor: rules that turn diagnostics records into diagnoses, each with evidence and a remedy.

``diagnose_records(diagnostics, metrics, classifier)`` is pure (records in, diagnoses out) so a finished
run can be diagnosed again from its files (``fathom doctor RUN``). Thresholds are deliberately
conservative: a healthy run must get no diagnosis (the sabotage suite in the tests checks both).
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fathom.diagnosis import data_rules, remedies, rules

if TYPE_CHECKING:
    from fathom.data.bundle import DataBundle

DIAGNOSIS_FILE = "diagnosis.json"


@dataclass
class Diagnosis:
    """One problem: a stable ``key``, a title, the numbers behind it and what to change."""

    key: str
    title: str
    evidence: str
    remedy: str
    overrides: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Diagnoses(list):  # type: ignore[type-arg]
    """The diagnoses of a run (a list of ``Diagnosis``), plus ``not_checked``: the checks that
    could not run on it and why (e.g. over/underfitting without a validation split)."""

    not_checked: list[str]

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self.not_checked = []


@dataclass
class Facts:
    """What the rules read, extracted once from the records."""

    samples: list[dict[str, Any]]
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    data: dict[str, Any]
    examples: dict[str, Any] | None
    nonfinite: dict[str, Any] | None
    classifier: bool  # the task predicts classes (accuracy, label noise, smoothing)
    run: dict[str, Any] = field(default_factory=dict)
    first_loss: float | None = None

    @classmethod
    def from_records(
        cls, diagnostics: list[dict[str, Any]], metrics: list[dict[str, Any]], classifier: bool
    ) -> Facts:
        def last(kind: str) -> dict[str, Any] | None:
            found = [r for r in diagnostics if r.get("kind") == kind]
            return found[-1] if found else None

        return cls(
            samples=[r for r in diagnostics if r.get("kind") == "sample"],
            train=[r for r in metrics if r.get("kind") == "train"],
            val=[r for r in metrics if r.get("kind") == "val"],
            data=last("data") or {},
            examples=last("examples"),
            nonfinite=last("nonfinite"),
            classifier=classifier,
            run=last("run") or {},
            first_loss=_number((last("first_loss") or {}).get("loss")),
        )

    def series(self, records: list[dict[str, Any]], key: str) -> list[float]:
        return [float(r[key]) for r in records if isinstance(r.get(key), (int, float))]

    def training_losses(self) -> list[float]:
        """The training loss over the run: the logged averages, or, when a short run logged fewer
        than four, the losses of the sampled batches (one batch each, but more points)."""
        logged = self.series(self.train, "loss")
        sampled = self.series(self.samples, "loss")
        return logged if len(logged) >= 4 or len(sampled) <= len(logged) else sampled

    def layer_values(self, key: str, samples: list[dict[str, Any]] | None = None) -> dict:
        """``{layer: [value per sample]}`` for one statistic, layers in execution order."""
        values: dict[str, list[float]] = {}
        for sample in self.samples if samples is None else samples:
            for name, stats in sample.get("layers", {}).items():
                if isinstance(stats.get(key), (int, float)):
                    values.setdefault(name, []).append(float(stats[key]))
        return values

    def late_samples(self) -> list[dict[str, Any]]:
        return self.samples[len(self.samples) // 2 :]

    def early_update_ratios(self, with_rates: bool = False) -> list[Any]:
        """Per-sample median update-to-weight ratios of the first (up to 10) samples
        (``with_rates``: pairs of (ratio, learning rate in force at that sample or None))."""
        medians = []
        for sample in self.samples[:10]:
            ratios = [
                float(stats["update_ratio"])
                for stats in sample.get("layers", {}).values()
                if isinstance(stats.get("update_ratio"), (int, float))
            ]
            if ratios:
                median = statistics.median(ratios)
                medians.append((median, _number(sample.get("lr"))) if with_rates else median)
        return medians

    def median_update_ratio(self) -> float | None:
        medians = self.early_update_ratios()
        return statistics.median(medians) if medians else None

    def largest_update_ratio(self) -> float | None:
        """The largest per-sample median update-to-weight ratio of the first samples."""
        medians = self.early_update_ratios()
        return max(medians) if medians else None

    def learning_rate(self) -> float | None:
        """The run's ``optim.lr`` (the schedule's base rate), else the largest rate logged (a
        short run's only log line may fall at the end of a decayed schedule, near zero)."""
        rates = self.series(self.train, "lr")
        base = _number(self.run.get("base_lr"))
        return base or (max(rates) if rates else _number(self.run.get("lr")))

    def rate_for_ratio(self, target: float) -> float | None:
        """The rate that would have given the early samples the update ratio ``target``, each
        taken at the rate in force at that sample (a warmup's or one-cycle's start is far
        below ``optim.lr``): the median over samples; None when the samples hold no rate."""
        wanted = [
            rate * target / ratio
            for ratio, rate in self.early_update_ratios(with_rates=True)
            if rate and ratio > 0
        ]
        return statistics.median(wanted) if wanted else None

    def validation(self) -> bool:
        """Was there a validation split? (Runs recorded before this fact: any val metrics.)"""
        return bool(self.run.get("validation", bool(self.val)))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value == value else None


def diagnose_records(
    diagnostics: list[dict[str, Any]], metrics: list[dict[str, Any]], classifier: bool = True
) -> Diagnoses:
    """Every rule that fires, in a fixed order; later rules may defer to earlier findings."""
    facts = Facts.from_records(diagnostics, metrics, classifier)
    found = Diagnoses()
    for rule in rules.RULES:
        result = rule(facts, {d.key for d in found})
        if result is not None:
            result["overrides"] = remedies.applicable(result.get("overrides", []), facts)
            found.append(Diagnosis(**result))
    found.not_checked = not_checked(facts)
    return found


def not_checked(facts: Facts) -> list[str]:
    """The checks the run's records could not support, said plainly rather than skipped."""
    notes = []
    if facts.run and not facts.validation() and facts.classifier:
        notes.append(
            "overfitting: the run has no validation split (data.val_fraction=0); "
            "underfitting was judged on training accuracy alone"
        )
    if facts.data and facts.data.get("duplicates", {}) is None:
        notes.append(
            "leakage: the search for copies across splits did not fit this short run's time "
            "budget; 'fathom doctor RUN' runs it"
        )
    if facts.classifier and facts.train and len(facts.training_losses()) < 4:
        notes.append("underfitting: too few training losses to tell a plateau from a short run")
    if facts.run and not facts.samples:
        notes.append("layer statistics: the run was too short to sample within the time budget")
    withheld = data_rules.label_noise_withheld(facts)
    return [*notes, withheld] if withheld else notes


def format_diagnoses(diagnoses: list[Diagnosis]) -> str:
    """The doctor's text for the terminal (with the checks it could not run, if any)."""
    notes = [f"  (not checked: {note})" for note in getattr(diagnoses, "not_checked", [])]
    if not diagnoses:
        return "\n".join(["doctor: no problems found", *notes])
    count = len(diagnoses)
    lines = [f"doctor: {count} problem{'s' if count > 1 else ''} found", *notes]
    for diagnosis in diagnoses:
        lines.append(f"  - {diagnosis.title} [{diagnosis.key}]")
        lines.append(f"      evidence: {diagnosis.evidence}")
        lines.append(f"      remedy:   {diagnosis.remedy}")
        if diagnosis.overrides:
            lines.append(f"      try:      {' '.join(diagnosis.overrides)}")
    return "\n".join(lines)


def save_diagnosis(
    run_dir: Path,
    diagnoses: list[Diagnosis],
    diagnostics: list[dict[str, Any]],
    figures: bool = True,
) -> None:
    """RUN/diagnosis.json, the diagnostics plots (``figures=False``: not drawn now; they cost
    about a second, which a short run's budget does not cover) and the report section."""
    from fathom.files import atomic_write_json
    from fathom.report.sections import save_section  # the figures' matplotlib only when drawn

    saved = {
        "diagnoses": [d.to_dict() for d in diagnoses],
        "not_checked": list(getattr(diagnoses, "not_checked", [])),
    }
    atomic_write_json(Path(run_dir) / DIAGNOSIS_FILE, saved)
    images: list[Path] = []
    if figures:
        from fathom.diagnosis.plots import plot_diagnostics

        images = plot_diagnostics(diagnostics, Path(run_dir) / "plots")
    else:  # figures of an earlier part of a resumed run would show stale statistics
        for stale in (Path(run_dir) / "plots").glob("diagnostics_*.png"):
            stale.unlink(missing_ok=True)
    relative = [f"plots/{path.name}" for path in images]
    text = (
        "No problems found in the training statistics."
        if not diagnoses
        else "Problems the doctor found, with the evidence and a remedy for each."
    )
    if not figures:
        text += " Figures of the layer statistics: run 'fathom doctor RUN' to draw them."
    not_checked = list(getattr(diagnoses, "not_checked", []))
    if not_checked:
        text += " Not checked: " + "; ".join(not_checked) + "."
    save_section(
        run_dir, "diagnosis", "Diagnosis (the doctor)", text=text,
        headers=["Problem", "Evidence", "Remedy"] if diagnoses else (),
        rows=[[d.title, d.evidence, d.remedy + (f" ({' '.join(d.overrides)})" if d.overrides else "")] for d in diagnoses],
        images=relative,
    )  # fmt: skip


def read_diagnosis(run_dir: Path) -> Diagnoses | None:
    from fathom.report.plots import read_json

    saved = read_json(Path(run_dir) / DIAGNOSIS_FILE)
    if not isinstance(saved, dict):
        return None
    diagnoses = Diagnoses(Diagnosis(**item) for item in saved.get("diagnoses", []))
    diagnoses.not_checked = [str(note) for note in saved.get("not_checked") or []]
    return diagnoses


def diagnose_run(
    run_dir: Path, load_bundle: Callable[[], DataBundle] | None = None
) -> list[Diagnosis]:
    """Diagnose a finished run again from its files (``fathom doctor RUN``).

    When the run recorded no data checks and ``load_bundle`` can load its dataset, the data
    checks are computed now. The result is saved back to RUN/diagnosis.json.
    """
    from fathom.diagnosis.datachecks import check_bundle
    from fathom.diagnosis.diagnostics import read_records
    from fathom.report.plots import read_json, read_metrics

    run_dir = Path(run_dir)
    records = read_records(run_dir)
    record = read_json(run_dir / "run.json") or {}
    # run.json says whether the task classifies; runs written before it said so were
    # classifiers exactly when their data's task was classification
    classifier = bool(
        record.get("classifier", record.get("task", "classification") == "classification")
    )
    data = [r for r in records if r.get("kind") == "data"]
    if load_bundle is not None and (not data or data[-1].get("duplicates", {}) is None):
        with contextlib.suppress(Exception):  # the dataset may be gone: diagnose without it
            records.append({"kind": "data", "step": 0, **check_bundle(load_bundle())})
    diagnoses = diagnose_records(records, read_metrics(run_dir / "metrics.jsonl"), classifier)
    save_diagnosis(run_dir, diagnoses, records)
    return diagnoses
