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
# Label noise on held-out rows: the error among the model's surest quarter of validation rows.
# Measured (3 seeds each, README "Diagnostics"): 25% of labels flipped gave 0.22-0.32 on the
# sentiment TSV and 0.22-0.28 on Adult; clean data 0-0.06 (the Transformer), 0.09-0.13 (LSTMs
# with AdamW or SGD lr 0.25), 0.12-0.16 (SGD lr 0.12); SGD at lr 0.05 0.17-0.35, still
# improving (see SETTLED).
SUREST_QUARTER_ERROR = 0.18
SURE = 0.6  # below this even the surest quarter is unsure: underfitting, not the labels
HELD_OUT_MINIMUM = 160  # a surest quarter of 40 rows
SETTLED = 0.01  # validation loss improving by less than this from one half of the run to the next
# Sure enough to judge while still improving: the noisy TSV with label smoothing (89%, its
# validation loss still falling) is noise; no clean model this sure erred on 18% (at most 13%).
CONFIDENT = 0.85
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
    held_out = examples.get("held_out") or {}
    settled = _settled(facts.series(facts.val, "loss"))
    evidence = _noise_in_held_out_labels(held_out, settled) or _noise_in_training_labels(
        examples, held_out
    )
    if evidence is None:
        return None
    return {
        "key": "label_noise",
        "title": "Suspected label noise",
        "evidence": f"{evidence}; {datachecks.highest_loss(examples)}",
        "remedy": "inspect and relabel or drop the highest-loss examples (see 'fathom explain "
        "RUN --method top-loss'); no setting repairs wrong labels",
        # train.label_smoothing=0.1 was printed here until measured: on 25% flipped labels it
        # changed accuracy by -1.5 to +0.1 points (bench/results/sabotage-cli-label-smoothing.json)
        "overrides": [],
    }


def _settled(val_losses: list[float]) -> bool:
    """Whether the validation loss has stopped improving: the best of the run's second half
    within 1% of the best of its first. A model still improving on held-out rows is no judge of
    their labels yet: SGD LSTMs on the clean sentiment data at lr 0.05 (57-61%, surest quarter
    at 62-74% confidence, validation loss still falling by 2.1% from half to half) look as noisy
    as Adult with 25% of its labels flipped (77-81%, flat within 0.5%)."""
    if len(val_losses) < 2:
        return False
    half = len(val_losses) // 2
    return min(val_losses[half:]) >= (1 - SETTLED) * min(val_losses[:half])


def _noise_in_held_out_labels(held_out: dict[str, Any], settled: bool) -> str | None:
    """Labels flipped across the data: even the model's surest predictions on rows it never
    trained on disagree with them (however well it memorised its training rows). A model still
    improving on them is judged only when it is already sure of that quarter."""
    count = int(held_out.get("count", 0))
    error = float(held_out.get("surest_quarter_error", 0.0))
    confidence = float(held_out.get("surest_quarter_confidence", 0.0))
    if count < HELD_OUT_MINIMUM or error < SUREST_QUARTER_ERROR or confidence < SURE:
        return None
    if not settled and confidence < CONFIDENT:
        return None
    return (
        f"the labels of {error:.0%} of the {count // 4} validation rows the model is surest of "
        f"({confidence:.0%} on average) disagree with its prediction; a clean but weak model is "
        "wrong mostly where it is unsure"
    )


def label_noise_withheld(facts: Facts) -> str | None:
    """Why the validation rows' verdict on the labels was withheld where it would have been
    "label noise": the model was still improving on them and not yet sure of them."""
    held_out = (facts.examples or {}).get("held_out") or {}
    if not held_out or _settled(facts.series(facts.val, "loss")):
        return None
    if _noise_in_held_out_labels(held_out, False) or not _noise_in_held_out_labels(held_out, True):
        return None
    return (
        "label noise on validation rows: their labels disagree with the model's surest "
        "predictions, but its validation loss was still falling, so it is no judge of them yet "
        "(train longer)"
    )


def _noise_in_training_labels(examples: dict[str, Any], held_out: dict[str, Any]) -> str | None:
    """Training rows predicted confidently as another class, more often than validation rows
    are: where held-out rows are as often confidently wrong, the errors are the model's own."""
    wrong = float(examples.get("confidently_wrong", 0.0))
    if wrong < CONFIDENTLY_WRONG:
        return None
    checked = int(held_out.get("count", 0)) >= datachecks.EXAMPLE_MINIMUM
    held_out_wrong = float(held_out.get("confidently_wrong", 0.0))
    if checked and held_out_wrong >= wrong:
        return None
    against = f" (validation rows: {held_out_wrong:.0%})" if checked else ""
    return (
        f"{wrong:.0%} of {examples['count']} training examples are predicted confidently (>60%) "
        f"as another class than their label{against}"
    )


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
