"""``fathom.knn_evaluate``: the kNN protocol of self-supervised learning, for any run (the
capability's own function, re-exported as the Python verb; see ``fathom.selfsupervised.knn``)."""

from __future__ import annotations

from fathom.selfsupervised import knn_evaluate

__all__ = ["knn_evaluate"]
