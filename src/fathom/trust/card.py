"""The report card of a classifier run: accuracy and per-class metrics, calibration before and
after temperature scaling, robustness (FGSM/PGD at the data's standard ε, the robustness curve,
the mean corruption error), fairness by group, size and latency, and the doctor's verdict.

``make_card`` computes ``card.json`` (every figure) and its PNGs under ``RUN/card/``;
``fathom.trust.card_page`` renders ``card.html``. Each part that does not apply (no images: no
attacks; no sensitive attribute: no fairness; no validation split: T fitted on nothing) says
why instead of a number.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import torch

from fathom.errors import FathomError
from fathom.files import atomic_write_json
from fathom.runs import Run
from fathom.runs.loading import load
from fathom.tasks.attacks import AttackSpec
from fathom.trust.calibration import calibration_metrics, plot_reliability
from fathom.trust.common import logits_of, model_device, require_classifier, split_tensors

CARD_FOLDER = "card"


def accuracy_part(run: Run) -> dict[str, Any]:
    """Test metrics and per-class precision/recall/F1 (from evaluation-test.json, else now)."""
    file = run.path / "evaluation-test.json" if run.path else None
    if file is None or not file.exists():
        run.evaluate("test")
    saved = json.loads(file.read_text()) if file is not None and file.exists() else {}
    per_class = saved.get("per_class") or {}
    names = saved.get("class_names") or run.info.class_names or []
    rows = [{"class": str(names[i]) if i < len(names) else str(i),
             **{key: values[i] for key, values in per_class.items()}}
            for i in range(len(per_class.get("f1", [])))]  # fmt: skip
    return {
        "metrics": saved.get("metrics", {}),
        "macro_f1": saved.get("macro_f1"),
        "per_class": rows,
    }


def calibration_part(run: Run, folder: Path) -> dict[str, Any]:
    """ECE, MCE, NLL, Brier on the test split; with a validation split, also after a temperature
    fitted on it (the fitted run itself comes from ``fathom calibrate``)."""
    from fathom.trust.temperature import measure_temperature

    try:
        measured = measure_temperature(run, "val")
        test = measured["test"]
        part = {"temperature": measured["temperature"], "fitted_on": "val", **test}
    except FathomError as error:
        chosen = split_tensors(run, "test")
        before = calibration_metrics(logits_of(run.model, chosen.inputs).softmax(1), chosen.targets)
        part = {"temperature": None, "note": str(error), "before": before}
    curves = {"before": part["before"]["bins"]}
    if part.get("after"):
        curves[f"after (T = {part['temperature']:.2f})"] = part["after"]["bins"]
    plot_reliability(curves, folder / "reliability.png")
    return part


def robustness_part(run: Run, limit: int, curve_points: int, seed: int) -> dict[str, Any]:
    """FGSM and PGD-10 at the standard ε, the robustness curve, and corruptions (images only)."""
    from fathom.trust.robustness import (
        corruption_table,
        robust_accuracy,
        robustness_curve,
        standard_eps,
    )  # fmt: skip

    if len(run.info.input_shape) != 3:
        return {"note": f"inputs of shape {list(run.info.input_shape)} are not images: no attacks"}
    eps = standard_eps(run)
    torch.manual_seed(seed)
    specs = {"fgsm": AttackSpec("fgsm", eps), "pgd-10": AttackSpec("pgd", eps, steps=10)}
    part: dict[str, Any] = {"eps": eps, "examples": limit}
    part["accuracy"] = {
        name: robust_accuracy(run, spec, "test", limit) for name, spec in specs.items()
    }
    if curve_points > 1:
        values = [eps * 2 * k / (curve_points - 1) for k in range(curve_points)]
        part["curve"] = robustness_curve(run, specs, values, "test", limit)
    part["corruptions"] = corruption_table(run, "test", limit, seed)
    return part


@torch.no_grad()
def latency_ms(model: torch.nn.Module, example: torch.Tensor, batch: int, repeats: int) -> float:
    """Median milliseconds of one forward pass of ``batch`` copies of ``example`` (warmed up)."""
    model.eval()
    inputs = example.unsqueeze(0).expand(batch, *example.shape).contiguous().to(model_device(model))
    for _ in range(3):
        model(inputs)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model(inputs)
        times.append((time.perf_counter() - started) * 1000)
    return float(sorted(times)[len(times) // 2])


def size_part(run: Run, repeats: int = 20) -> dict[str, Any]:
    """Parameters, weight-file bytes and latency at batch 1 and 64 on this machine's CPU."""
    example = split_tensors(run, "test", 1).inputs[0]
    weights = run.path / "model.safetensors" if run.path else None
    return {
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "weights_bytes": weights.stat().st_size
        if weights is not None and weights.exists()
        else None,
        "latency_ms_batch_1": latency_ms(run.model, example, 1, repeats),
        "latency_ms_batch_64": latency_ms(run.model, example, 64, max(3, repeats // 4)),
        "threads": torch.get_num_threads(),
    }


def doctor_part(run: Run) -> list[dict[str, Any]] | None:
    from fathom.diagnosis.doctor import read_diagnosis

    diagnoses = read_diagnosis(run.path) if run.path else None
    return None if diagnoses is None else [d.to_dict() for d in diagnoses]


def make_card(
    run: Run, limit: int = 500, curve_points: int = 5, seed: int = 0, robustness: bool = True
) -> dict[str, Any]:
    """Compute every part of the card; write RUN/card/card.json and its PNGs."""
    require_classifier(run, "a report card")
    if run.path is None:
        raise FathomError("this run has no folder to write its card in")
    folder = run.path / CARD_FOLDER
    folder.mkdir(exist_ok=True)
    from fathom.trust.fairness import run_fairness

    card: dict[str, Any] = {"run": run.path.name, "task": run.task.name, "data": run.info.name,
                            "model": run.config.model.name}  # fmt: skip
    card["accuracy"] = accuracy_part(run)
    card["calibration"] = calibration_part(run, folder)
    card["robustness"] = robustness_part(run, limit, curve_points, seed) if robustness else None
    card["fairness"] = None
    with contextlib.suppress(FathomError):  # no sensitive attribute: no fairness part
        card["fairness"] = run_fairness(run, "test")
    card["size"] = size_part(run)
    card["size_before"] = _source_size(run)
    card["doctor"] = doctor_part(run)
    if card["robustness"] and card["robustness"].get("curve"):
        from fathom.trust.robustness import plot_robustness_curve

        plot_robustness_curve(card["robustness"]["curve"], folder / "robustness.png")
    atomic_write_json(folder / "card.json", card)
    return card


def _source_size(run: Run) -> dict[str, Any] | None:
    """Size and latency of the run this one was derived from (calibrated, compressed ...)."""
    source = run.summary.get("derived_from") or run.summary.get("compressed_from")
    if not source or not Path(source).is_dir():
        return None
    with contextlib.suppress(FathomError):
        original = load(source)
        original.data = run.data
        return {"run": Path(source).name, **size_part(original)}
    return None
