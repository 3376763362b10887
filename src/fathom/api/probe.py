"""``fathom.knn_evaluate``: the kNN protocol of self-supervised learning, for any run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fathom.data.bundle import DataBundle
from fathom.runs import Run
from fathom.selfsupervised import knn_evaluate as knn_of_run


def knn_evaluate(
    run: Run | str | Path,
    data: DataBundle | str | None = None,
    *,
    split: str = "test",
    k: int = 200,
    temperature: float = 0.1,
    bank: int = 10_000,
) -> dict[str, Any]:
    """The weighted kNN accuracy of ``run``'s backbone features on ``data`` (default: the run's
    own dataset): ``{"knn_accuracy": ..., "k": ..., "bank": ..., "queries": ...}``.

    Works on any run whose model has the transfer contract (a self-supervised run, a classifier,
    a fine-tuned run); the linear probe is ``fathom.finetune(run, data, overrides=
    ["transfer.mode=features", "transfer.cache_features=true"])``."""
    return knn_of_run(run, data, split=split, k=k, temperature=temperature, bank=bank)


__all__ = ["knn_evaluate"]
