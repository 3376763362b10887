"""Run folders: the format on disk, the ``Run`` object, ``load`` and the model's lineage.

``load(path)`` replays the lineage recorded in run.json (base architecture, then transforms)
and loads the weights, so every model a Fathom command produces loads, evaluates, predicts,
exports and serves with the same code.
"""

from fathom.runs.lineage import apply_transform, lineage_of, replay
from fathom.runs.loading import load
from fathom.runs.run import Run

__all__ = ["Run", "apply_transform", "lineage_of", "load", "replay"]
