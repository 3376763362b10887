"""The Python verbs of Fathom, one module each: ``train`` (fit, resume), ``transfer``
(finetune), ``tune`` (tune, nas), ``export`` (export_model), ``serve`` and ``inspection``
(lr_find, doctor, explain). Each imports the assembly, run folders and capabilities only."""

from fathom.api.compress import compress
from fathom.api.export import export_model
from fathom.api.federate import federate
from fathom.api.inspection import doctor, explain, lr_find
from fathom.api.launch import launch
from fathom.api.probe import knn_evaluate
from fathom.api.serve import serve
from fathom.api.train import fit, resume
from fathom.api.transfer import finetune
from fathom.api.trust import attack, calibrate, card
from fathom.api.tune import nas, tune
from fathom.runs import load

__all__ = [
    "attack", "calibrate", "card", "compress", "doctor", "explain", "export_model", "federate",
    "finetune", "fit", "knn_evaluate", "launch", "load", "lr_find", "nas", "resume", "serve",
    "tune",
]  # fmt: skip
