"""A scikit-learn classifier around a Fathom model, so fairlearn's mitigations (and any
scikit-learn tool) can train and query it: ``fit(X, y, sample_weight)``, ``predict_proba``,
``predict``.

Training runs in memory through Fathom's assembly and trainer (no run folder). Sample weights,
which Fathom's tasks do not take, are honoured by a seeded weighted resampling of the training
rows (as many rows as given): the expected loss equals the weighted loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from fathom.assemble import build_trainer, prepare
from fathom.data.bundle import DataBundle, DataInfo, Split
from fathom.errors import DataError
from fathom.trust.common import logits_of


class FathomClassifier(ClassifierMixin, BaseEstimator):
    """``model`` a registered name (default ``mlp``); ``config`` and ``overrides`` as for
    ``fathom.fit``; inputs are standardised with the (unweighted) training statistics."""

    def __init__(
        self, model: str = "mlp", config: dict[str, Any] | None = None,
        overrides: Sequence[str] = (), seed: int = 0,
    ) -> None:  # fmt: skip
        self.model = model
        self.config = config
        self.overrides = overrides
        self.seed = seed

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FathomClassifier:  # noqa: N803
        features = np.asarray(X, dtype=np.float32)
        labels = np.asarray(y)
        self.classes_, encoded = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise DataError("FathomClassifier.fit needs at least two classes in y")
        self.mean_ = features.mean(axis=0)
        self.std_ = np.where(features.std(axis=0) > 0, features.std(axis=0), 1.0)
        rows = np.arange(len(features))
        if sample_weight is not None:
            weights = np.clip(np.asarray(sample_weight, dtype=np.float64), 0, None)
            if not weights.sum() > 0:
                raise DataError("sample_weight sums to zero")
            generator = np.random.default_rng(self.seed)
            rows = generator.choice(len(features), size=len(features), p=weights / weights.sum())
        inputs = torch.from_numpy((features[rows] - self.mean_) / self.std_)
        info = DataInfo("table", "classification", (features.shape[1],), len(self.classes_))
        bundle = DataBundle(info, Split(inputs.float(), torch.from_numpy(encoded[rows]).long()))
        overrides = [f"train.seed={self.seed}", "run.progress=none", "train.diagnostics=false",
                     *self.overrides]  # fmt: skip
        config, bundle, network = prepare(self.model, bundle, self.config, overrides, {})
        trainer = build_trainer(config, network, bundle, None)
        trainer.fit()
        self.network_ = trainer.ema.shadow if trainer.ema is not None else trainer.model
        return self

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        features = (np.asarray(X, dtype=np.float32) - self.mean_) / self.std_
        logits = logits_of(self.network_, torch.from_numpy(features.astype(np.float32)))
        return logits.double().softmax(dim=1).numpy()  # float64: fairlearn writes float64 into it

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
