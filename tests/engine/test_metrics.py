import numpy as np
import pytest
import torch
from sklearn.metrics import (
    confusion_matrix,
    mean_absolute_error,
    precision_recall_fscore_support,
    r2_score,
)

from fathom.engine.metrics import ClassificationMetrics, RegressionMetrics


def test_classification_metrics_match_scikit_learn():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 7, generator=generator)
    targets = torch.randint(0, 7, (500,), generator=generator)
    metrics = ClassificationMetrics(7, torch.device("cpu"))
    for chunk in range(0, 500, 128):
        metrics.update(logits[chunk : chunk + 128], targets[chunk : chunk + 128], torch.tensor(1.0))
    predictions = logits.argmax(1).numpy()
    values, details = metrics.compute(), metrics.details()
    assert values["accuracy"] == pytest.approx((predictions == targets.numpy()).mean())
    top5 = logits.topk(5, dim=1).indices
    assert values["top5_accuracy"] == pytest.approx(
        (top5 == targets[:, None]).any(1).float().mean().item()
    )
    precision, recall, f1, support = precision_recall_fscore_support(
        targets, predictions, zero_division=0
    )
    assert np.allclose(details["per_class"]["precision"], precision)
    assert np.allclose(details["per_class"]["recall"], recall)
    assert np.allclose(details["per_class"]["f1"], f1)
    assert details["per_class"]["support"] == support.tolist()
    assert details["confusion_matrix"] == confusion_matrix(targets, predictions).tolist()


def test_regression_metrics_match_scikit_learn():
    generator = torch.Generator().manual_seed(1)
    targets = torch.randn(300, generator=generator)
    predictions = targets + 0.3 * torch.randn(300, generator=generator)
    metrics = RegressionMetrics(torch.device("cpu"))
    metrics.update(predictions, targets, (predictions - targets).square().sum())
    values = metrics.compute()
    assert values["mae"] == pytest.approx(mean_absolute_error(targets, predictions), rel=1e-6)
    assert values["r2"] == pytest.approx(r2_score(targets, predictions), rel=1e-6)
    assert values["rmse"] == pytest.approx(
        float((predictions - targets).square().mean().sqrt()), rel=1e-6
    )
