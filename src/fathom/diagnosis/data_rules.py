"""The doctor's rules about the data: scale, class balance, label noise, leakage. Each reads
``Facts`` and returns a diagnosis dict or None (see ``fathom.diagnosis.rules``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fathom.diagnosis import datachecks

if TYPE_CHECKING:
    from fathom.diagnosis.doctor import Facts

FEATURE_SCALE = 20.0
IMBALANCE_RATIO = 0.25
CONFIDENTLY_WRONG = 0.1
LEAKED_FRACTION = 0.01
ROOT_CAUSES = {"non_finite", "unnormalised_inputs", "lr_too_high"}
"""Findings that explain the symptoms below them: symptom rules stay silent when one is found."""


def unnormalised_inputs(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    scale = facts.data.get("scale")
    if not scale:
        return None
    largest = max(scale["feature_std_max"], scale["feature_mean_abs_max"])
    if largest < FEATURE_SCALE:
        return None
    return {
        "key": "unnormalised_inputs",
        "title": "Unnormalised inputs",
        "evidence": f"the inputs the model sees have feature means up to "
        f"{scale['feature_mean_abs_max']:.3g} and standard deviations up to "
        f"{scale['feature_std_max']:.3g} (overall mean {scale['mean']:.3g}, std {scale['std']:.3g})",
        "remedy": "standardise each feature/channel with training-set statistics",
        "overrides": ["data.normalize=true"],
    }


def class_imbalance(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    counts = facts.data.get("class_counts")
    if not counts or len(counts) < 2 or max(counts) == 0:
        return None
    ratio = min(counts) / max(counts)
    if ratio >= IMBALANCE_RATIO:
        return None
    names = facts.data.get("class_names") or [str(i) for i in range(len(counts))]
    rare = [i for i, count in enumerate(counts) if count < IMBALANCE_RATIO * max(counts)]
    total = sum(counts)
    shown = ", ".join(f"{names[i]} {counts[i] / total:.1%}" for i in rare[:5])
    return {
        "key": "class_imbalance",
        "title": "Class imbalance",
        "evidence": f"rare classes in the training set: {shown} (the largest has "
        f"{max(counts) / total:.1%}); accuracy hides how they are predicted",
        "remedy": "resample the training set (oversample the rare classes) or weight the loss by "
        "inverse class frequency; judge the run by per-class recall, not accuracy",
        "overrides": [],
    }


def label_noise(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    examples = facts.examples
    if not examples or found & ROOT_CAUSES:
        return None
    wrong = float(examples.get("confidently_wrong", 0.0))
    if wrong < CONFIDENTLY_WRONG:
        return None
    return {
        "key": "label_noise",
        "title": "Suspected label noise",
        "evidence": f"{wrong:.0%} of {examples['count']} training examples are predicted "
        f"confidently (>60%) as another class than their label; {datachecks.highest_loss(examples)}",
        "remedy": "inspect and relabel or drop the highest-loss examples (see 'fathom explain "
        "RUN --method top-loss'); label smoothing softens the damage",
        "overrides": ["train.label_smoothing=0.1"],
    }


def leakage(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    duplicates = facts.data.get("duplicates") or {}
    leaked = {
        name: info
        for name, info in duplicates.items()
        if info["rows"] and info["in_train"] / info["rows"] >= LEAKED_FRACTION
    }
    if not leaked:
        return None
    shown = "; ".join(
        f"{info['in_train']} of {info['rows']} {name} rows are copies of training rows"
        + (f" once the id-like column {', '.join(info['ignoring'])} is left out" if info.get("ignoring") else "")
        + f" (e.g. rows {', '.join(map(str, info['first'][:5]))})"
        for name, info in leaked.items()
    )  # fmt: skip
    return {
        "key": "leakage",
        "title": "Train/test leakage (duplicates across splits)",
        "evidence": shown,
        "remedy": "drop the copies from the evaluation splits (data.dedupe=true), or remove "
        "duplicate rows before splitting; the reported scores are optimistic",
        "overrides": ["data.dedupe=true"],
    }
