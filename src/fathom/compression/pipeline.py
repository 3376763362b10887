"""``fathom.compress``: distil → prune → quantize a run, within an accuracy budget, into a new run.

Each stage is scored on the validation split (the test split when there is none) and kept only
while the accuracy lost against the original stays within ``max_accuracy_drop`` points; the
first stage over budget is dropped and the pipeline stops there. The result is a normal run
folder (lineage, weights, evaluation, report) with compression.json and a before/after table.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from fathom.assemble import load_data
from fathom.compression import stages
from fathom.compression.measure import accuracy, describe_model, latencies, test_inputs
from fathom.compression.pruning import check_amount
from fathom.compression.quantization import choose_mode, cpu_instruction_sets, quantize_int8
from fathom.compression.report import write_compressed_run
from fathom.config import FathomConfig
from fathom.errors import ConfigError
from fathom.runs.run import Run


@dataclass
class CompressionPlan:
    """What to do; ``None``/``False`` skips a stage. Accuracy drop is in percentage points."""

    prune: float | None = None
    structured: bool = False
    prune_scope: str = "global"
    prune_steps: int = 1  # iterative: prune, fine-tune, prune, ... (each step within budget)
    quantize: str | None = None
    quantize_mode: str | None = None  # dynamic | static; default by the model's layers
    distill_into: str | None = None
    student_options: dict[str, Any] = field(default_factory=dict)
    temperature: float = 4.0
    alpha: float = 0.9
    distill_epochs: int | None = None  # default: the run's epochs
    distill_overrides: list[str] = field(default_factory=list)  # how the student trains
    finetune_epochs: int = 1
    qat_epochs: int = 0  # quantization-aware fine-tuning before int8 (0: post-training only)
    max_accuracy_drop: float = 0.5
    name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.distill_overrides, str):  # one KEY=VALUE given in Python
            self.distill_overrides = [self.distill_overrides]

    def check(self) -> None:
        if self.prune is not None:
            check_amount(self.prune)
        if self.quantize not in (None, "int8"):
            raise ConfigError(f"unknown quantization '{self.quantize}' (choose from int8)")
        if self.distill_overrides and not self.distill_into:
            raise ConfigError("--distill-set says how a student trains: give --distill-into too")
        stages.check_student_overrides(self.distill_overrides)
        if self.qat_epochs and self.quantize is None:
            raise ConfigError("--qat-epochs trains for int8: give --quantize int8 too")
        if self.prune is None and self.quantize is None and self.distill_into is None:
            raise ConfigError("nothing to do: give --prune, --quantize and/or --distill-into")
        if not 1 <= self.prune_steps <= 100:
            raise ConfigError(f"--prune-steps must be between 1 and 100, got {self.prune_steps}")
        if self.max_accuracy_drop < 0 or self.finetune_epochs < 0 or self.qat_epochs < 0:
            raise ConfigError(
                "--max-accuracy-drop, --finetune-epochs and --qat-epochs must not be negative"
            )


@dataclass
class Stage:
    name: str
    accuracy: float
    kept: bool
    details: dict[str, Any]
    seconds: float


def compress(run: Run, plan: CompressionPlan) -> Run:
    """Apply ``plan`` to ``run`` and write the result as a new run beside it."""
    plan.check()
    if not run.task.is_classifier:
        raise ConfigError(f"fathom compress works on classification runs, not {run.task.name}")
    if run.data is None:
        run.data = load_data(run.config)
    split = "val" if run.data.val is not None else "test"
    baseline = accuracy(run, run.model, split)
    model, config = copy.deepcopy(run.model).eval(), run.config
    history: list[Stage] = []
    for name, step in planned_steps(run, plan):
        started = time.perf_counter()
        candidate, candidate_config, details = step(model, config)
        score = accuracy(run, candidate, split)
        kept = (baseline - score) * 100 <= plan.max_accuracy_drop
        history.append(Stage(name, score, kept, details, time.perf_counter() - started))
        if not kept:
            break
        model, config = candidate, candidate_config
    summary = summarise(run, model, plan, baseline, split, history)
    return write_compressed_run(run, model, config, summary, plan.name)


def planned_steps(run: Run, plan: CompressionPlan) -> list[tuple[str, Any]]:
    """(name, step) pairs; a step maps (model, config) to (model, config, details)."""
    bundle, steps = run.data, []
    if plan.distill_into:
        epochs = plan.distill_epochs or run.config.train.epochs

        def distil(model: nn.Module, config: FathomConfig) -> Any:
            student, student_config = stages.distill(
                run, plan.distill_into, plan.student_options, epochs, plan.temperature, plan.alpha,
                plan.distill_overrides,
            )  # fmt: skip
            note = stages.label_smoothing_note(run) if plan.alpha > 0 else None
            return student, student_config, {"student": plan.distill_into, "epochs": epochs,
                                             "temperature": plan.temperature, "alpha": plan.alpha,
                                             "overrides": list(plan.distill_overrides),
                                             **({"note": note} if note else {})}  # fmt: skip

        steps.append(("distill", distil))
    if plan.prune is not None:
        for index in range(plan.prune_steps):
            steps.append((f"prune {index + 1}/{plan.prune_steps}", pruning_step(run, plan, index)))
    if plan.quantize:

        def quantize(model: nn.Module, config: FathomConfig) -> Any:
            mode, trained = choose_mode(model, plan.quantize_mode), {}
            if plan.qat_epochs:
                model, trained = stages.quantization_aware(
                    model, config, bundle, plan.qat_epochs, mode
                )
            current = Run(None, config, run.info, copy.deepcopy(model), bundle)
            calibration = stages.calibration_batches(bundle)
            quantized, details = quantize_int8(current, mode, calibration)
            return quantized, config, {**details, **trained, "cpu": cpu_instruction_sets()}

        steps.append(("quantize", quantize))
    return steps


def pruning_step(run: Run, plan: CompressionPlan, index: int) -> Any:
    """Step ``index`` of an iterative schedule (prune, then fine-tune): unstructured steps reach
    ``prune * (index + 1) / steps`` sparsity; structured ones remove the same share of the channels
    left each time, ending at ``prune`` of the original channels."""

    def prune(model: nn.Module, config: FathomConfig) -> Any:
        working, bundle = copy.deepcopy(model), run.data
        if plan.structured:
            amount = 1 - (1 - plan.prune) ** (1 / plan.prune_steps)
            pruned, details = stages.prune_structured(
                working, config, bundle, amount, plan.finetune_epochs
            )
        else:
            amount = plan.prune * (index + 1) / plan.prune_steps
            pruned, details = stages.prune_unstructured(
                working, config, bundle, amount, plan.prune_scope, plan.finetune_epochs
            )
        measured = describe_model(pruned, run.info)
        timing = latencies({"step": pruned}, test_inputs(run), rounds=5)["step"]
        return pruned, config, {"amount": round(amount, 6), "structured": plan.structured,
                                "finetune_epochs": plan.finetune_epochs, **details, **measured,
                                **timing}  # fmt: skip

    return prune


def summarise(
    run: Run, model: nn.Module, plan: CompressionPlan, baseline: float, split: str,
    history: list[Stage],
) -> dict[str, Any]:  # fmt: skip
    """compression.json: the plan, each stage, and before/after measurements side by side."""
    inputs = test_inputs(run)
    timing = latencies({"before": run.model, "after": model}, inputs)
    before = {**describe_model(run.model, run.info), **timing["before"]}
    after = {**describe_model(model, run.info), **timing["after"]}
    before["accuracy"] = accuracy(run, run.model, "test") if run.data.test is not None else None
    after["accuracy"] = accuracy(run, model, "test") if run.data.test is not None else None
    return {
        "source": str(run.path) if run.path else None,
        "plan": asdict(plan),
        "selection_split": split,
        "baseline_accuracy": baseline,
        "stages": [asdict(stage) for stage in history],
        "stopped_at_budget": any(not stage.kept for stage in history),
        "before": before,
        "after": after,
        "cpu": cpu_instruction_sets(),
        "latency_note": "median ms per forward pass on 1 thread, before and after interleaved",
    }
