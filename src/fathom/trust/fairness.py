"""Fairness by group through fairlearn: per-group accuracy, selection rate, true and false
positive rates (``MetricFrame``); demographic parity difference and ratio, equalized odds
difference; reweighing weights (Kamiran & Calders 2012). Mitigations: ``ThresholdOptimizer``
(post-processing) and ``ExponentiatedGradient`` (reductions) take Fathom models through the
scikit-learn adapter ``fathom.trust.adapter.FathomClassifier``.

Rates treat class index 1 as the positive outcome (binary tasks); for more classes only the
per-group accuracy and counts are given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fathom.errors import ConfigError, DataError
from fathom.runs import Run
from fathom.trust.common import logits_of, require_classifier, split_tensors


def group_metrics(
    labels: Any, predictions: Any, groups: Any, group_names: list[str] | None = None
) -> dict[str, Any]:
    """Per-group and overall metrics, and the parity gaps (binary labels: 1 is positive)."""
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )  # fmt: skip
    from sklearn.metrics import accuracy_score

    labels, predictions, groups = (np.asarray(a) for a in (labels, predictions, groups))
    if not len(labels) == len(predictions) == len(groups):
        raise DataError(
            f"{len(labels)} labels, {len(predictions)} predictions, {len(groups)} groups"
        )
    if group_names is not None:
        groups = np.asarray([group_names[int(g)] for g in groups])
    metrics: dict[str, Any] = {"accuracy": accuracy_score, "count": count}
    binary = set(np.unique(labels)) | set(np.unique(predictions)) <= {0, 1}
    if binary:
        metrics |= {"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                    "false_positive_rate": false_positive_rate}  # fmt: skip
    frame = MetricFrame(
        metrics=metrics, y_true=labels, y_pred=predictions, sensitive_features=groups
    )
    by_group = frame.by_group.to_dict(orient="index")
    result: dict[str, Any] = {
        "by_group": {
            str(k): {m: _number(m, v) for m, v in row.items()} for k, row in by_group.items()
        },
        "overall": {m: _number(m, v) for m, v in frame.overall.items()},
        "accuracy_difference": float(frame.difference()["accuracy"]),
    }
    if binary:
        keyword = {"sensitive_features": groups}
        result["demographic_parity_difference"] = float(
            demographic_parity_difference(labels, predictions, **keyword)
        )
        result["demographic_parity_ratio"] = float(
            demographic_parity_ratio(labels, predictions, **keyword)
        )
        result["equalized_odds_difference"] = float(
            equalized_odds_difference(labels, predictions, **keyword)
        )
    return result


def _number(metric: str, value: Any) -> float | int:
    return int(value) if metric == "count" else float(value)


def reweighing_weights(labels: Any, groups: Any) -> np.ndarray:
    """Kamiran & Calders' weights P(group) P(label) / P(group, label): label and group become
    independent in the weighted data. They average to 1."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    weights = np.empty(len(labels), dtype=np.float64)
    for group in np.unique(groups):
        for label in np.unique(labels):
            cell = (groups == group) & (labels == label)
            if cell.any():
                weights[cell] = (groups == group).mean() * (labels == label).mean() / cell.mean()
    return weights


def run_fairness(run: Run, split: str = "test") -> dict[str, Any]:
    """Fairness of a run's predictions on ``split`` by the groups of its ``data.sensitive``."""
    require_classifier(run, "fairness measures")
    chosen = split_tensors(run, split)
    sensitive = run.info.extra.get("sensitive") or {}
    if chosen.groups is None or not sensitive:
        raise ConfigError(
            f"run {run.path} has no sensitive attribute: train it with data.sensitive=COLUMN"
        )
    predictions = logits_of(run.model, chosen.inputs).argmax(1)
    result = group_metrics(chosen.targets.numpy(), predictions.numpy(), chosen.groups.numpy(),
                           sensitive.get("groups"))  # fmt: skip
    return {"attribute": sensitive.get("column"), "split": split, **result}


def as_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


CONSTRAINTS = ("demographic_parity", "equalized_odds")


def _check_constraint(constraint: str) -> None:
    if constraint not in CONSTRAINTS:
        raise ConfigError(
            f"fairness constraint must be one of {', '.join(CONSTRAINTS)}, got '{constraint}'"
        )


def threshold_optimizer(
    estimator: Any, features: Any, labels: Any, groups: Any, constraint: str = "demographic_parity"
) -> Any:
    """fairlearn's post-processing on a fitted ``estimator``: group-specific thresholds on its
    probabilities, fitted on (``features``, ``labels``, ``groups``); predict with
    ``.predict(X, sensitive_features=g, random_state=seed)``."""
    from fairlearn.postprocessing import ThresholdOptimizer

    _check_constraint(constraint)
    optimizer = ThresholdOptimizer(
        estimator=estimator, constraints=constraint, prefit=True, predict_method="predict_proba"
    )
    return optimizer.fit(as_numpy(features), as_numpy(labels), sensitive_features=as_numpy(groups))


def exponentiated_gradient(
    estimator: Any, features: Any, labels: Any, groups: Any,
    constraint: str = "demographic_parity", max_iter: int = 10, eps: float = 0.01,
) -> Any:  # fmt: skip
    """fairlearn's reductions: a randomised mixture of ``estimator``s retrained with sample
    weights (``fit(X, y, sample_weight)``) under the constraint, up to ``max_iter`` rounds."""
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient

    _check_constraint(constraint)
    moment = DemographicParity() if constraint == "demographic_parity" else EqualizedOdds()
    mitigator = ExponentiatedGradient(estimator, moment, eps=eps, max_iter=max_iter)
    return mitigator.fit(as_numpy(features), as_numpy(labels), sensitive_features=as_numpy(groups))
