"""The Python verbs of Fathom, one module each: ``train`` (fit, resume) and ``inspection``
(lr_find, doctor, explain). Each imports the assembly, run folders and capabilities only."""

from fathom.api.compress import compress
from fathom.api.export import export_model
from fathom.api.inspection import doctor, explain, lr_find
from fathom.api.serve import serve
from fathom.api.train import fit, resume
from fathom.runs import load

__all__ = ["compress", "doctor", "explain", "export_model", "fit", "load", "lr_find", "resume", "serve"]
