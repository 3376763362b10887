"""Remedies fitted to the run: overrides computed from its settings, checked against what the
model and the run accept, and never one that is already in force.

A rule proposes ``key=value`` overrides; ``applicable`` keeps those that (1) name an option the
model's factory takes (``fathom.registry.MODELS.get(name)``'s signature; ``model.init`` is taken
by every registered model), (2) change a setting (the run's value differs), and (3) make sense
for the run (early stopping needs a validation split).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fathom.diagnosis.doctor import Facts

HEALTHY_UPDATE_RATIO = 3e-3  # update-to-weight ratio per step of a well-set learning rate
# The ratio a stalled run's rate is raised to. At a standstill each step's gradient points the
# same way as the last (and is largest, at initialisation), so a ratio measured there is 1.5-4x
# what the same rate gives once training moves: ResNet-8/SGD 0.039 per unit of rate stalled vs
# 0.024-0.029 in its healthy run; the digits CNN/AdamW 7 vs 1.7-1.8. 1e-2 measured stalled is
# 3-6e-3 moving, the healthy runs' peak (ResNet-8 at lr 0.1: 2.6e-3, the digits CNN: 4.4e-3).
STALLED_UPDATE_RATIO = 1e-2
WIDTH_OPTIONS = ("hidden", "width", "dim", "channels", "hidden_size")
RUN_SETTINGS = {  # override key -> the run fact holding its value now
    "train.grad_clip_norm": "grad_clip_norm",
    "optim.weight_decay": "weight_decay",
    "optim.lr": "lr",
    "train.label_smoothing": "label_smoothing",
    "train.epochs": "epochs",
}


def model_options(facts: Facts) -> set[str] | None:
    """The options the run's model factory takes (None: a custom model, or unknown)."""
    spec = facts.run.get("model") or {}
    name = spec.get("name")
    if not name:
        return None
    try:
        from fathom.registry import MODELS

        factory = MODELS.get(str(name))
        return {*inspect.signature(factory).parameters, "init"}
    except Exception:  # noqa: BLE001 - an unknown model gets no model.* remedy
        return None


def _parse(value: str) -> Any:
    text = value.strip().lower()
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return value.strip()


def _in_force(key: str, value: str, facts: Facts) -> bool:
    """Is ``key=value`` already the run's setting?"""
    spec = facts.run.get("model") or {}
    current: Any = None
    if key in RUN_SETTINGS:
        current = facts.run.get(RUN_SETTINGS[key])
    elif key.startswith("model."):
        current = spec.get(key.removeprefix("model."))
    elif key == "data.normalize":
        current = facts.data.get("normalized")
    if current is None:
        return False
    wanted = _parse(value)
    if isinstance(wanted, float) and isinstance(current, (int, float)):
        return abs(float(current) - wanted) <= 1e-9 * max(1.0, abs(wanted))
    return str(current).lower().replace(" ", "") == str(value).lower().replace(" ", "")


def applicable(overrides: list[str], facts: Facts) -> list[str]:
    """The overrides that the run's model and task accept and that change something."""
    options = model_options(facts)
    known_run = bool(facts.run)
    kept = []
    for item in overrides:
        key, _, value = item.partition("=")
        option = key.removeprefix("model.").split(".")[0]
        if key.startswith("model.") and known_run and (options is None or option not in options):
            continue
        if key.startswith("train.early_stopping") and (
            not facts.validation() or facts.run.get("early_stopping")
        ):
            continue
        if key == "train.label_smoothing" and not facts.classifier:
            continue
        if known_run and _in_force(key, value, facts):
            continue
        kept.append(item)
    return kept


def larger_model(facts: Facts) -> list[str]:
    """Twice the width of the run's model (at least 64 units), in the option it has."""
    spec = facts.run.get("model") or {}
    options = model_options(facts) or set()
    for name in WIDTH_OPTIONS:
        if name not in options:
            continue
        current = spec.get(name)
        if isinstance(current, (list, tuple)) and current:
            widths = ",".join(str(max(64, 2 * int(width))) for width in current)
            return [f"model.{name}=[{widths}]"]
        if isinstance(current, (int, float)) and not isinstance(current, bool):
            return [f"model.{name}={max(64, 2 * int(current))}"]
    return []


def longer_training(facts: Facts) -> list[str]:
    epochs = facts.run.get("epochs")
    if isinstance(epochs, int) and epochs > 0 and not facts.run.get("max_steps"):
        return [f"train.epochs={2 * epochs}"]
    return []


def stronger_weight_decay(facts: Facts) -> list[str]:
    current = facts.run.get("weight_decay")
    current = float(current) if isinstance(current, (int, float)) else 0.0
    return [f"optim.weight_decay={max(0.05, 2 * current):.3g}"]


def learning_rate(
    facts: Facts, ratio: float, low: float, high: float, target: float = HEALTHY_UPDATE_RATIO
) -> list[str]:
    """The run's learning rate times what brings ``ratio`` to ``target``, within [low, high]."""
    rate = facts.learning_rate()
    if not rate or not ratio > 0:
        return []
    wanted = facts.rate_for_ratio(target)
    factor = wanted / rate if wanted else target / ratio
    factor = min(max(factor, low), high)
    return [f"optim.lr={rate * factor:.2g}"]


def lower_learning_rate(facts: Facts, ratio: float | None) -> list[str]:
    """For a learning rate too high: the LR finder's choice on the rerun (``optim.lr=auto``,
    measured on the run's own model and data) for an adaptive optimizer that the finder can
    sweep (one optimizer, not Muon) and that did not already choose this run's rate; else the
    run's rate scaled to a healthy update ratio. Plain SGD takes the scaled rate: its 100-step
    sweep sees the loss fall only late (an SGD LSTM on sentiment: minimum at 0.14, so the
    finder's 0.014 trained to 52.5%, where the scaled 0.25 reached 68.7%, 3 seeds)."""
    sweepable = facts.run.get("optimizers", 2) == 1 and facts.run.get("optimizer") != "muon"
    adaptive = facts.run.get("optimizer") != "sgd"
    if sweepable and adaptive and not facts.run.get("lr_from_finder"):
        return ["optim.lr=auto"]
    return learning_rate(facts, ratio, 1e-4, 0.1) if ratio else learning_rate(facts, 1, 0.1, 0.1)


def after_divergence(facts: Facts) -> list[str]:
    """A learning rate for the rerun: from the update sizes sampled before the divergence (to a
    healthy ratio), else a tenth of the run's."""
    ratio = facts.largest_update_ratio()
    if ratio is not None and ratio > HEALTHY_UPDATE_RATIO:
        return learning_rate(facts, ratio, 1e-3, 0.1)
    return learning_rate(facts, 1.0, 0.1, 0.1)
