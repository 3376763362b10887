"""Looking inside training: diagnostics and the doctor, the LR finder, explanations.

``Diagnostics`` is the callback (on by default, ``train.diagnostics``); ``doctor(run)`` diagnoses
a finished run from its files. The LR finder and explanations are imported from their modules.
"""

from fathom.diagnosis.diagnostics import Diagnostics
from fathom.diagnosis.doctor import Diagnosis, diagnose_records, format_diagnoses

__all__ = ["Diagnosis", "Diagnostics", "diagnose_records", "format_diagnoses"]
