"""The Python verbs of Fathom, one module each: ``train`` (fit, resume) and ``inspection``
(lr_find, doctor, explain). Each imports the assembly, run folders and capabilities only."""

from fathom.api.inspection import doctor, explain, lr_find
from fathom.api.train import fit, resume
from fathom.api.trust import attack, calibrate, card
from fathom.runs import load

__all__ = ["attack", "calibrate", "card", "doctor", "explain", "fit", "load", "lr_find", "resume"]
