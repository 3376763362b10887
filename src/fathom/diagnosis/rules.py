"""The doctor's rules. Each reads ``Facts`` and returns a diagnosis dict or None.

A rule receives the keys already found, so that, e.g., underfitting is not reported when the
real cause (a stalled learning rate, noisy labels) has been named. Thresholds are in one place.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fathom.diagnosis import remedies
from fathom.diagnosis.data_rules import (
    ROOT_CAUSES,
    class_imbalance,
    label_noise,
    leakage,
    unnormalised_inputs,
)

if TYPE_CHECKING:
    from fathom.diagnosis.doctor import Facts

VANISHING_RATIO = 1e-3  # first-layer / last-layer gradient norm
EXPLODING_NORM = 100.0  # a layer's gradient norm (healthy: below ~10)
DEAD_FRACTION = 0.5
ALL_DEAD = 0.9  # a layer this silent is broken whether or not the run learns
SATURATED_FRACTION = 0.5
UPDATE_RATIO_HIGH = 0.1  # update-to-weight ratio per step (healthy: about 1e-3)
UPDATE_RATIO_LOW = 1e-4
PROGRESS = 2 / 3  # a training loss below this share of its start: the run is learning
BLOW_UP = 2.0  # an early training loss this many times its start: the first steps overshot
# (the start is one batch's loss: nile's GRU, batches of 16, starts at 0.70 and averages 1.08)
UNDERFIT_ACCURACY = 0.85  # without class counts; with them, UNDERFIT_SKILL
UNDERFIT_SKILL = 0.25  # the share of a constant guess's errors a fitted model removes, at least
OVERFIT_RISE = 0.05  # nats per example: a smaller rise of the validation loss is not worth a remedy

Rule = Callable[["Facts", set[str]], dict[str, Any] | None]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _quartile(values: list[float]) -> float:
    """The upper quartile, rounded up (one or two samples: their largest)."""
    ordered = sorted(values)
    return ordered[math.ceil(0.75 * (len(ordered) - 1))]


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
    # A layer's upper quartile over the samples: lasting growth, not one spike (a GAN's
    # discriminator spikes for a step whenever the generator catches up).
    lasting = {name: _quartile(values) for name, values in norms.items() if values}
    if not lasting:
        return None
    layer = max(lasting, key=lasting.__getitem__)
    typical = _median([_median(values) for values in norms.values()])
    if lasting[layer] < EXPLODING_NORM:
        return None
    return {
        "key": "exploding_gradients",
        "title": "Exploding gradients",
        "evidence": f"gradient norm of {layer} reached {max(norms[layer]):.3g} (upper quartile "
        f"{lasting[layer]:.3g}, median over layers {typical:.3g}); a healthy network stays below ~10",
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


def _learning(facts: Facts) -> bool:
    """Is the run learning? A classifier's training accuracy (logged, else the doctor's own
    fit-end pass over training rows) removes at least a quarter of a constant guess's errors;
    without accuracy, the training loss fell by a third."""
    logged = facts.series(facts.train, "accuracy")
    final = logged[-1] if logged else (facts.examples or {}).get("accuracy")
    baseline = _majority_skill(facts, final) if isinstance(final, (int, float)) else None
    if baseline is not None:
        return baseline[1] >= UNDERFIT_SKILL
    change = _loss_change(facts)
    return change is not None and change[1] < PROGRESS * change[0]


def dead_relus(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    """Most units of a ReLU layer silent for a whole batch: a fault when nearly all are (the
    layer passes nothing on) or when the run does not learn. Partly silent layers in runs that
    learn (a VAE's encoder, adversarial training's sparse features) are left alone."""
    if found & ROOT_CAUSES:
        return None
    dead = facts.layer_values("dead", facts.late_samples())
    worst = {name: _median(values) for name, values in dead.items() if values}
    bad = {name: value for name, value in worst.items() if value >= DEAD_FRACTION}
    if not bad:
        return None
    layer = max(bad, key=bad.__getitem__)
    if bad[layer] < ALL_DEAD and _learning(facts):
        return None  # a partly silent layer in a run that learns: sparse, not broken
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
    classifier at most log(classes), what an untrained one scores; old runs: the first logged.
    None for adversarial tasks (several optimizers): the first phase's loss, a GAN
    discriminator's, falls to zero when training fails, so it measures no progress."""
    losses = facts.training_losses()
    if len(losses) < 2 or facts.run.get("optimizers", 1) > 1:
        return None
    start = facts.first_loss if facts.first_loss is not None else losses[0]
    counts = facts.data.get("class_counts")
    if facts.classifier and counts:
        start = min(start, math.log(len(counts))) if facts.first_loss else math.log(len(counts))
    return start, min(losses[len(losses) // 2 :])


def _blown_up(facts: Facts, start: float) -> float | None:
    """The highest training loss of the run's first half, when it rose well above the start."""
    losses = facts.training_losses()
    early = max(losses[: max(1, len(losses) // 2)], default=float("nan"))
    return early if early > BLOW_UP * start else None


def lr_too_high(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    """Steps too large for the loss: large update-to-weight ratios or a loss that rose in the
    first steps, in a run whose loss did not fall by a third. Large steps under a loss that
    falls well (Muon's orthogonalised updates, a warmup's peak) are not a fault."""
    ratio = facts.largest_update_ratio()
    change = _loss_change(facts)
    if change is not None and change[1] < PROGRESS * change[0]:
        return None
    blown = _blown_up(facts, change[0]) if change is not None else None
    large = ratio is not None and ratio >= UPDATE_RATIO_HIGH
    if not (large or blown):
        return None
    evidence = (
        [f"update-to-weight ratio per step reached {ratio:.2g} (median over layers)"]
        if large
        else []
    )
    if blown:
        evidence.append(f"the training loss rose from {change[0]:.3g} to {blown:.3g} early on")
    if change is not None:
        evidence.append(f"training loss went from {change[0]:.3g} to {change[1]:.3g}")
    return {
        "key": "lr_too_high",
        "title": "Learning rate too high",
        "evidence": "; ".join(evidence),
        "remedy": "lower the learning rate (or run 'fathom lr-find' / optim.lr=auto)",
        "overrides": remedies.lower_learning_rate(facts, ratio),
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
        "overrides": remedies.learning_rate(
            facts, ratio, 10.0, 1e5, target=remedies.STALLED_UPDATE_RATIO
        ),
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


def _majority_skill(facts: Facts, accuracy: float) -> tuple[float, float] | None:
    """(accuracy of always predicting the most common training class, the share of that guess's
    errors the model removes); None without class counts."""
    counts = facts.data.get("class_counts")
    if not counts or max(counts) == sum(counts):
        return None
    majority = max(counts) / sum(counts)
    return majority, (accuracy - majority) / (1 - majority)


def underfitting(facts: Facts, found: set[str]) -> dict[str, Any] | None:
    """Training accuracy barely above a constant guess (the most common class), on a plateau:
    judged against the data's own baseline, so a noisy task (Adult: ~85% is near the best) is
    not called underfit and a 10-class one at 40% is."""
    symptoms = {"lr_too_low", "label_noise", "vanishing_gradients", "exploding_gradients"}
    if found & (ROOT_CAUSES | symptoms | {"dead_relus", "saturated_activations"}):
        return None
    train_accuracy = facts.series(facts.train, "accuracy")
    val_accuracy = facts.series(facts.val, "accuracy")
    if not train_accuracy or not facts.classifier:
        return None
    final_train = train_accuracy[-1]
    baseline = _majority_skill(facts, final_train)
    weak = final_train < UNDERFIT_ACCURACY if baseline is None else baseline[1] < UNDERFIT_SKILL
    if not weak or _overfitting_evidence(facts) is not None:
        return None
    losses = facts.training_losses()
    if len(losses) < 4 or _still_falling(losses):
        return None  # stopped while learning fast, or too short to tell: not the model's size
    shown = f" (validation {val_accuracy[-1]:.1%})" if val_accuracy else ""
    if baseline is not None:
        shown += f", against {baseline[0]:.1%} for always the most common class"
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
