"""The doctor's rules. Each reads ``Facts`` and returns a diagnosis dict or None.

A rule receives the keys already found, so that, e.g., underfitting is not reported when the
real cause (a stalled learning rate, noisy labels) has been named. Thresholds are in one place.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fathom.diagnosis import datachecks, remedies

if TYPE_CHECKING:
    from fathom.diagnosis.doctor import Facts

VANISHING_RATIO = 1e-3  # first-layer / last-layer gradient norm
EXPLODING_NORM = 100.0  # a layer's gradient norm (healthy: below ~10)
DEAD_FRACTION = 0.5
SATURATED_FRACTION = 0.5
UPDATE_RATIO_HIGH = 0.1  # update-to-weight ratio per step (healthy: about 1e-3)
UPDATE_RATIO_LOW = 1e-4
FEATURE_SCALE = 20.0
IMBALANCE_RATIO = 0.25
CONFIDENTLY_WRONG = 0.1
LEAKED_FRACTION = 0.01
UNDERFIT_ACCURACY = 0.85
OVERFIT_RISE = 0.05  # nats per example: a smaller rise of the validation loss is not worth a remedy

Rule = Callable[["Facts", set[str]], dict[str, Any] | None]
ROOT_CAUSES = {"non_finite", "unnormalised_inputs", "lr_too_high"}
"""Findings that explain the symptoms below them: symptom rules stay silent when one is found."""


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def non_finite(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    record = facts.nonfinite
    if record is None:
        return None
    where = record.get("first_layer") or "none (every layer output was finite: the loss overflowed)"
    params = record.get("parameters") or []
    evidence = f"loss became NaN/Inf at step {record.get('step')}; first layer with a non-finite output: {where}"
    if params:
        evidence += f"; non-finite parameters: {', '.join(params[:3])}"
    return {
        "key": "non_finite",
        "title": "NaN/Inf during training",
        "evidence": evidence,
        "remedy": "lower the learning rate and clip gradients; check the inputs for NaN",
        "overrides": [*remedies.after_divergence(facts), "train.grad_clip_norm=1.0"],
    }


def _gradient_ends(facts: Facts) -> tuple[str, str, float, float] | None:
    norms = facts.layer_values("grad_norm")
    names = [name for name, values in norms.items() if values]
    if len(names) < 3:
        return None
    first, last = names[0], names[-1]
    return first, last, _median(norms[first]), _median(norms[last])


def vanishing_gradients(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    if found & (ROOT_CAUSES | {"dead_relus"}):
        return None
    ends = _gradient_ends(facts)
    if ends is None:
        return None
    first, last, first_norm, last_norm = ends
    if not (last_norm > 0 and first_norm / last_norm < VANISHING_RATIO):
        return None
    return {
        "key": "vanishing_gradients",
        "title": "Vanishing gradients",
        "evidence": f"median gradient norm of the first layer ({first}) is {first_norm:.2g}, "
        f"{first_norm / last_norm:.1e} times that of the last ({last}, {last_norm:.2g})",
        "remedy": "use ReLU-family activations with He initialisation, add batch norm or "
        "residual connections, or use fewer layers",
        "overrides": [
            "model.activation=relu",
            "model.init=kaiming_normal",
            "model.batch_norm=true",
        ],
    }


def exploding_gradients(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    if found & ROOT_CAUSES:
        return None
    norms = facts.layer_values("grad_norm")
    peaks = {name: max(values) for name, values in norms.items() if values}
    if not peaks:
        return None
    layer = max(peaks, key=peaks.__getitem__)
    typical = _median([_median(values) for values in norms.values()])
    if peaks[layer] < EXPLODING_NORM:
        return None
    return {
        "key": "exploding_gradients",
        "title": "Exploding gradients",
        "evidence": f"gradient norm of {layer} reached {peaks[layer]:.3g} "
        f"(median over layers {typical:.3g}); a healthy network stays below ~10",
        "remedy": "clip gradients, lower the learning rate, initialise with a smaller scale",
        "overrides": [
            "train.grad_clip_norm=1.0",
            "model.init=kaiming_normal",
            *(
                remedies.learning_rate(facts, 1.0, 0.3, 0.3)
                if facts.run.get("grad_clip_norm")
                else []
            ),
        ],
    }


def dead_relus(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    if found & ROOT_CAUSES:
        return None
    dead = facts.layer_values("dead", facts.late_samples())
    worst = {name: _median(values) for name, values in dead.items() if values}
    bad = {name: value for name, value in worst.items() if value >= DEAD_FRACTION}
    if not bad:
        return None
    layer = max(bad, key=bad.__getitem__)
    return {
        "key": "dead_relus",
        "title": "Dead ReLUs",
        "evidence": f"{bad[layer]:.0%} of the units of {layer} output zero for every example "
        f"of a batch ({len(bad)} of {len(worst)} ReLU layers above {DEAD_FRACTION:.0%})",
        "remedy": "re-initialise the weights (biases at zero), lower the learning rate, or use "
        "leaky ReLU",
        "overrides": ["model.init=kaiming_normal", "model.activation=leaky_relu"],
    }


def saturated_activations(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    if found & ROOT_CAUSES:
        return None
    saturated = facts.layer_values("saturated", facts.late_samples())
    worst = {name: _median(values) for name, values in saturated.items() if values}
    bad = {name: value for name, value in worst.items() if value >= SATURATED_FRACTION}
    if not bad:
        return None
    layer = max(bad, key=bad.__getitem__)
    return {
        "key": "saturated_activations",
        "title": "Saturated activations",
        "evidence": f"{bad[layer]:.0%} of the outputs of {layer} are in the flat tails of the "
        "sigmoid/tanh, where the gradient is almost zero",
        "remedy": "normalise the inputs, initialise with Xavier/Glorot, add batch norm, or use ReLU",
        "overrides": ["data.normalize=true", "model.init=xavier_normal", "model.batch_norm=true"],
    }


def _loss_change(facts: Facts) -> tuple[float, float] | None:
    """(starting loss, lowest logged loss of the second half). The start is the loss of the very
    first step (before any blow-up; the first logged loss averages many steps), and for a
    classifier at most log(classes), what an untrained one scores; old runs: the first logged."""
    losses = facts.series(facts.train, "loss")
    if len(losses) < 2:
        return None
    start = facts.first_loss if facts.first_loss is not None else losses[0]
    counts = facts.data.get("class_counts")
    if facts.classifier and counts:
        start = min(start, math.log(len(counts))) if facts.first_loss else math.log(len(counts))
    return start, min(losses[len(losses) // 2 :])


def lr_too_high(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    ratio = facts.largest_update_ratio()
    change = _loss_change(facts)
    if ratio is None or ratio < UPDATE_RATIO_HIGH:
        return None
    if change is not None and change[1] < 0.5 * change[0]:
        return None  # large steps, but the loss falls well: not a problem worth naming
    evidence = (
        f"update-to-weight ratio per step reached {ratio:.2g} (median over layers; healthy: ~1e-3)"
    )
    if change is not None:
        evidence += f"; training loss went from {change[0]:.3g} to {change[1]:.3g}"
    return {
        "key": "lr_too_high",
        "title": "Learning rate too high",
        "evidence": evidence,
        "remedy": "lower the learning rate (or run 'fathom lr-find' / optim.lr=auto)",
        "overrides": remedies.learning_rate(facts, ratio, 1e-4, 0.1),
    }


def lr_too_low(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    if found & (ROOT_CAUSES | {"dead_relus", "vanishing_gradients", "saturated_activations"}):
        return None
    ratio = facts.median_update_ratio()
    change = _loss_change(facts)
    if ratio is None or ratio > UPDATE_RATIO_LOW or change is None:
        return None
    if change[1] < 0.5 * change[0]:
        return None
    return {
        "key": "lr_too_low",
        "title": "Learning rate too low (stalled loss)",
        "evidence": f"median update-to-weight ratio per step is {ratio:.2g} (healthy: ~1e-3); "
        f"training loss only went from {change[0]:.3g} to {change[1]:.3g}",
        "remedy": "raise the learning rate (or run 'fathom lr-find' / optim.lr=auto)",
        "overrides": remedies.learning_rate(facts, ratio, 10.0, 1e4),
    }


def _overfitting_evidence(facts: Facts) -> str | None:
    val_losses = facts.series(facts.val, "loss")
    train_losses = facts.series(facts.train, "loss")
    if len(val_losses) < 3 or not train_losses:
        return None
    best_index = min(range(len(val_losses)), key=val_losses.__getitem__)
    best, final, train = val_losses[best_index], val_losses[-1], train_losses[-1]
    rose = final > 1.3 * best and final - best >= OVERFIT_RISE
    if best_index < 0.75 * (len(val_losses) - 1) and rose and train < 0.5 * final:
        epoch = facts.val[best_index].get("epoch")
        return (
            f"validation loss was lowest ({best:.3g}) at epoch {epoch} and rose to {final:.3g} "
            f"while the training loss fell to {train:.3g}"
        )
    train_accuracy = facts.series(facts.train, "accuracy")
    val_accuracy = facts.series(facts.val, "accuracy")
    gap = train_accuracy[-1] - val_accuracy[-1] if train_accuracy and val_accuracy else 1.0
    if final > 5 * train and final - train > 0.2 and gap >= 0.05:
        shown = (
            f"; accuracy {train_accuracy[-1]:.1%} vs {val_accuracy[-1]:.1%}" if val_accuracy else ""
        )
        return f"validation loss {final:.3g} is {final / max(train, 1e-12):.0f}x the training loss {train:.3g}{shown}"
    return None


def overfitting(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    broken = {"exploding_gradients", "vanishing_gradients", "dead_relus", "saturated_activations"}
    if found & (ROOT_CAUSES | broken):
        return None
    evidence = _overfitting_evidence(facts)
    if evidence is None:
        return None
    return {
        "key": "overfitting",
        "title": "Overfitting",
        "evidence": evidence,
        "remedy": "stop early, add weight decay, dropout or augmentation, or get more data",
        "overrides": [
            "train.early_stopping.patience=3",
            *remedies.stronger_weight_decay(facts),
            "model.dropout=0.3",
        ],
    }


def _still_falling(losses: list[float]) -> bool:
    """Did the training loss fall by more than a tenth over the last quarter of the run?"""
    if len(losses) < 4:
        return False
    quarter = max(1, len(losses) // 4)
    return min(losses[-quarter:]) < 0.9 * min(losses[:-quarter])


def underfitting(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    symptoms = {"lr_too_low", "label_noise", "vanishing_gradients", "exploding_gradients"}
    if found & (ROOT_CAUSES | symptoms | {"dead_relus", "saturated_activations"}):
        return None
    train_accuracy = facts.series(facts.train, "accuracy")
    val_accuracy = facts.series(facts.val, "accuracy")
    if not train_accuracy or not facts.classifier:
        return None
    final_train = train_accuracy[-1]
    if final_train >= UNDERFIT_ACCURACY or _overfitting_evidence(facts) is not None:
        return None
    if _still_falling(facts.series(facts.train, "loss")):
        return None  # a run stopped while learning fast needs more steps, not another model
    shown = f" (validation {val_accuracy[-1]:.1%})" if val_accuracy else ""
    decay = facts.run.get("weight_decay")
    return {
        "key": "underfitting",
        "title": "Underfitting",
        "evidence": f"training accuracy is only {final_train:.1%}{shown}: "
        "the model does not fit even the data it trains on",
        "remedy": "use a larger model, train longer, or reduce regularisation",
        "overrides": [
            *remedies.larger_model(facts),
            *remedies.longer_training(facts),
            *(["optim.weight_decay=0"] if decay else []),
        ],
    }


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
        "remedy": "remove duplicate rows before splitting (dedupe), or drop the copies from the "
        "evaluation splits; the reported scores are optimistic",
        "overrides": [],
    }


RULES: list[Rule] = [
    non_finite,
    unnormalised_inputs,
    lr_too_high,
    leakage,
    class_imbalance,
    dead_relus,
    vanishing_gradients,
    exploding_gradients,
    saturated_activations,
    lr_too_low,
    label_noise,
    underfitting,
    overfitting,
]
