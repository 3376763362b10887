"""Fathom: deep learning end to end on PyTorch.

import fathom
data = fathom.data.load("mnist")
model = fathom.models.create("resnet8", num_classes=10, in_channels=1)
run = fathom.fit(model, data, epochs=2)
run.evaluate()
run = fathom.load(run.path)
"""

from fathom import data, engine, models, tasks
from fathom._version import __version__
from fathom.api import (
    attack,
    calibrate,
    card,
    compress,
    doctor,
    explain,
    export_model,
    federate,
    finetune,
    fit,
    knn_evaluate,
    launch,
    load,
    lr_find,
    nas,
    resume,
    serve,
    tune,
)
from fathom.config import FathomConfig
from fathom.errors import FathomError
from fathom.runs import Run

__all__ = [
    "FathomConfig",
    "FathomError",
    "Run",
    "__version__",
    "attack",
    "calibrate",
    "card",
    "compress",
    "data",
    "doctor",
    "engine",
    "explain",
    "export_model",
    "federate",
    "finetune",
    "fit",
    "knn_evaluate",
    "launch",
    "load",
    "lr_find",
    "models",
    "nas",
    "resume",
    "serve",
    "tasks",
    "tune",
]
