"""Self-supervised learning's evaluation protocols for any run (the pretraining itself is the
``simclr`` and ``byol`` tasks in ``fathom.tasks``).

``knn_evaluate(run, data)``: the weighted kNN accuracy of a run's backbone features (the model
contract's ``features``) on a split, against a memory bank of training examples. The linear
probe is ``fathom.finetune(run, data, overrides=["transfer.mode=features"])``.
"""

from fathom.selfsupervised.knn import knn_evaluate

__all__ = ["knn_evaluate"]
