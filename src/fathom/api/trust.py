"""``fathom.attack``, ``fathom.calibrate`` and ``fathom.card``: how far a classifier run can be
trusted (adversarial and corruption robustness, calibration, fairness), on one page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fathom.runs import Run, load
from fathom.tasks.attacks import AttackSpec


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load(run)


def attack(
    run: Run | str | Path, method: str = "pgd", eps: float = 0.3, *, norm: str = "linf",
    steps: int = 40, step_size: float | None = None, restarts: int = 1, targeted: bool = False,
    split: str = "test", limit: int | None = 1000, seed: int = 0,
    output_dir: str | Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Attack a classifier run's ``split``; writes adversarial.npy, labels.npy, examples.png and
    accuracy.json to ``output_dir`` (default RUN/attacks/<method>-<norm>-eps<eps>) and returns the
    accuracy table. ε is in pixel units ([0, 1])."""
    import torch

    from fathom.trust.robustness import write_attack

    spec = AttackSpec(method, eps, norm, steps, step_size, restarts)
    loaded = _as_run(run)
    if output_dir is None:
        output_dir = Path(loaded.path or ".") / "attacks" / f"{method}-{norm}-eps{eps:g}"
    torch.manual_seed(seed)
    result = write_attack(loaded, spec, Path(output_dir), split, limit, targeted)
    return {**result, "output_dir": str(output_dir)}


def calibrate(run: str | Path, split: str = "val", name: str | None = None) -> dict[str, Any]:
    """Fit temperature scaling on ``split`` and write the calibrated run as ``RUN-calibrated``
    (its lineage ends with the ``temperature`` transform); returns T, the metrics before and
    after, and the new folder under ``"path"``."""
    from fathom.trust.temperature import calibrate_run

    return calibrate_run(run, split, name)


def card(
    run: Run | str | Path, *, limit: int = 500, curve_points: int = 5, seed: int = 0,
    robustness: bool = True, report: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The report card: RUN/card/card.json (every figure), card.html and PNGs. ``report``: also
    add it as a section of the run's report.html. Returns the card with ``"html"``."""
    from fathom.trust.card import make_card
    from fathom.trust.card_page import write_card_page

    loaded = _as_run(run)
    made = make_card(loaded, limit, curve_points, seed, robustness)
    page = write_card_page(loaded.path, made)
    if report:
        from fathom.trust.card_page import add_card_to_report

        add_card_to_report(loaded.path, made)
    return {**made, "html": str(page)}


__all__ = ["attack", "calibrate", "card"]
