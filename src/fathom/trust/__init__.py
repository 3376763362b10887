"""Trust: adversarial robustness, calibration, corruption robustness, fairness, and the report
card of a classifier run (``fathom attack``, ``fathom calibrate``, ``fathom card``).

The attacks themselves (FGSM, PGD) live in ``fathom.tasks.attacks`` because adversarial
training (task ``adversarial``) runs them; this package measures runs with them.
"""

from fathom.tasks.attacks import AttackSpec, PixelSpace, attack
from fathom.trust.calibration import calibration_metrics, fit_temperature
from fathom.trust.corruptions import CORRUPTIONS, corrupt
from fathom.trust.fairness import group_metrics, reweighing_weights

__all__ = [
    "CORRUPTIONS",
    "AttackSpec",
    "PixelSpace",
    "attack",
    "calibration_metrics",
    "corrupt",
    "fit_temperature",
    "group_metrics",
    "reweighing_weights",
]
