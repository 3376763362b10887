"""Training diagnostics: a callback that samples layer statistics within a time budget.

On a sampled step forward hooks (registered for that step only) record each leaf layer's activation
mean/std (the first tensor of a recurrent layer's tuple), its dead-ReLU fraction and sigmoid/tanh
saturation; ``after_backward`` records per-layer gradient norms (as the optimizer sees them:
unscaled, and after clipping when clipping is on); ``batch_end`` weight norms, update-to-weight
ratios and the batch's loss. Data checks and per-example losses run at fit end, bounded. **Cost**: the callback times itself and samples only while its total time stays
within ``budget`` (5%) of the training time measured so far, so its cost is proportional to training
whatever the model or data size; the figures are drawn at fit end only when the budget leaves room
(``fathom doctor RUN`` draws them always). Everything goes to ``RUN/diagnostics.jsonl``; at fit end
the doctor turns it into ``RUN/diagnosis.json`` and a report section. The only per-step cost is one
hook on the whole model checking that its output is finite (every step on CPU, on sampled steps on
accelerators); when it is not, the same batch is run again through hooks before the weights are
updated, to name the first layer that produced a NaN/Inf. Nothing here draws a random number or
changes a value, and any failure becomes a warning: diagnostics never stop training.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fathom.data.bundle import DataBundle
from fathom.diagnosis import datachecks
from fathom.diagnosis.measures import (
    activation_statistics,
    first_tensor,
    run_facts,
    update_statistics,
    weighted_leaves,
    whole,
)
from fathom.engine.callbacks import Callback
from fathom.errors import TrainingDiverged
from fathom.files import atomic_write_text

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer

__all__ = ["Diagnostics", "activation_statistics", "read_records"]

DIAGNOSTICS_FILE = "diagnostics.jsonl"
BUDGET = 0.05  # the callback's time, as a fraction of the training time measured so far
SAMPLING_SHARE = 0.7  # of the budget, for samples: the rest covers fit-end work and dispatch
MIN_GAP = 10  # steps between two samples, at least
SHARDED_SAMPLES = 10  # FSDP: samples are collectives: fixed steps, alike on all ranks
PLOT_SECONDS = 1.0  # what drawing the three figures costs on a laptop CPU (measured 0.7-0.9 s)


class Diagnostics(Callback):
    """Collects training statistics into ``RUN/diagnostics.jsonl`` and diagnoses the run at the end.

    ``bundle`` (the data as the model sees it) enables the data checks and the label-noise check;
    ``run_dir=None`` keeps the records in memory (``self.records``); ``figures=False``: no plots.
    ``budget``: the fraction of the training time the callback may spend; ``every`` > 0 samples
    every that many steps instead, whatever it costs (for tests and close inspection).
    """

    order = 50

    def __init__(
        self,
        run_dir: Path | None = None,
        bundle: DataBundle | None = None,
        every: int = 0,
        budget: float = BUDGET,
        figures: bool = True,
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.path = self.run_dir / DIAGNOSTICS_FILE if self.run_dir is not None else None
        self.bundle, self.every, self.budget, self.figures = bundle, every, budget, figures
        self.records: list[dict[str, Any]] = []
        self.diagnoses: list[Any] = []
        self.spent = 0.0  # seconds inside this callback since fit start
        self._clock = time.perf_counter()
        self._first_step, self._last_sample, self._sample_cost = 0, -1, 0.0
        self._end_started = (0.0, 0.0)  # (spent, reserve) when the fit-end checks began
        self._planned = math.inf  # steps this fit will train (epochs x batches, or max_steps)
        self._hooks: list[Any] = []
        self._layers: dict[str, dict[str, torch.Tensor]] = {}
        self._order: list[str] = []
        self._before: dict[str, list[torch.Tensor]] = {}
        self._sampling, self._output_finite = False, True
        self._root_hooks: list[Any] = []
        self._last_inputs: torch.Tensor | None = None
        self._first_nonfinite: str | None = None
        self._failed: set[str] = set()

    # ----------------------------------------------------------------- events
    def fit_start(self, trainer: Trainer) -> None:
        self._clock, self.spent = time.perf_counter(), 0.0
        self._first_step = trainer.state.step
        planned = trainer.epochs * len(trainer.train_loader)
        self._planned = min(planned, trainer.config.max_steps or planned)
        if trainer.execution.shards_state and not self.every:  # see SHARDED_SAMPLES
            self.every = max(MIN_GAP, math.ceil(self._planned / SHARDED_SAMPLES))
        self._guard("resume", lambda: self._keep_records_until(trainer.state.step))
        self._guard("run facts", lambda: self._write(run_facts(trainer, self.bundle, self.run_dir)))
        self._guard("hooks", lambda: self._add_hooks(trainer.model))

    def batch_start(self, trainer: Trainer) -> None:
        if self.should_sample(trainer.state.step):
            self._guard("sample", lambda: self._start_sample(trainer.model))

    def after_backward(self, trainer: Trainer) -> None:
        if not self._output_finite and self._first_nonfinite is None:
            self._guard("non-finite", lambda: self._replay_nonfinite(trainer.model))
        if self._sampling:
            self._guard("gradients", lambda: self._record_gradients(trainer))

    def batch_end(self, trainer: Trainer) -> None:
        if trainer.state.step == 1 and self._first_step == 0:
            self._guard("first loss", lambda: self._write_first_loss(trainer))
        if self._sampling:
            self._guard("sample", lambda: self._finish_sample(trainer))

    def fit_end(self, trainer: Trainer) -> None:
        self._remove_hooks()
        self._end_started = (
            self.spent,
            (1 - SAMPLING_SHARE) * self.budget * self.trained_seconds(),
        )
        self._guard("data checks", lambda: self._write_data_checks(trainer))
        self._guard("examples", lambda: self._write_examples(trainer))
        self._guard("doctor", lambda: self.diagnose(trainer))

    def fit_failed(self, trainer: Trainer) -> None:
        """Training raised (``trainer.failure``): for ``TrainingDiverged``, find where."""
        self._remove_hooks()
        error = trainer.failure
        if not isinstance(error, TrainingDiverged):
            return
        self._guard("non-finite", lambda: self._locate_nonfinite(trainer, error))
        self._end_started = (
            self.spent,
            (1 - SAMPLING_SHARE) * self.budget * self.trained_seconds(),
        )
        self._guard("data checks", lambda: self._write_data_checks(trainer))
        self._guard("doctor", lambda: self.diagnose(trainer))

    # ----------------------------------------------------------------- budget
    def trained_seconds(self) -> float:
        """Seconds of training since fit start, this callback's own time excluded."""
        return time.perf_counter() - self._clock - self.spent

    def should_sample(self, step: int) -> bool:
        """Sample this step? Never the first step of a fit (it carries one-off costs, and layers
        set from the first batch change there); always the second (the doctor's reference point:
        gradients and update sizes before the optimizer adapts, at about the cost of one step);
        then whenever the time spent so far plus one more sample stays within the budget (fixed
        ``every`` steps when ``every`` is set)."""
        if step <= self._first_step:
            return False
        if self.every:
            return step % self.every == 0
        if self._last_sample < self._first_step:  # a sample ~ a step: only if the run pays for it
            return (self._planned - self._first_step) * SAMPLING_SHARE * self.budget >= 1
        if step - self._last_sample < MIN_GAP:
            return False
        trained = self.trained_seconds()
        cost = self._sample_cost or trained / (step - self._first_step)  # about one step
        return self.spent + cost <= SAMPLING_SHARE * self.budget * trained

    def left(self) -> float:
        """Seconds of the budget not yet spent (unlimited when ``every`` is set)."""
        return math.inf if self.every else self.budget * self.trained_seconds() - self.spent

    def fit_end_allowance(self) -> float:
        """Seconds for each of the two fit-end checks: what is left of the budget, and at least
        half the share kept back from sampling (samples may have used more than theirs)."""
        return max(self.left(), self._end_started[1] / 2)

    def room_for_figures(self) -> bool:
        return self.figures and self.left() >= PLOT_SECONDS

    # ---------------------------------------------------------------- samples
    def _add_hooks(self, model: nn.Module) -> None:
        """One cheap hook on the whole model for every step: is its output finite?"""
        self._root_hooks.append(model.register_forward_hook(self._watch_output))

    def _watch_output(self, module: nn.Module, inputs: Any, output: Any) -> None:
        started = time.perf_counter()
        output = first_tensor(output)
        if torch.is_grad_enabled() and output is not None and inputs:
            self._last_inputs = inputs[0]
            if output.is_floating_point() and (output.device.type == "cpu" or self._sampling):
                self._output_finite = bool(torch.isfinite(output.detach()).all())
        self.spent += time.perf_counter() - started

    def _start_sample(self, model: nn.Module) -> None:
        """Hooks on every leaf layer, for this step only, and a copy of the weights."""
        self._layers, self._order, self._sampling = {}, [], True
        self._sample_started = time.perf_counter()
        for name, module in model.named_modules():
            if next(module.children(), None) is None:
                self._hooks.append(module.register_forward_hook(self._hook(name or "model")))
        self._before = {
            name: [whole(p.detach()).clone() for p in module.parameters(recurse=False)]
            for name, module in weighted_leaves(model)
        }
        self._sample_seconds = time.perf_counter() - self._sample_started

    def _hook(self, name: str) -> Callable[..., None]:
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            if not self._sampling or name in self._layers or not torch.is_grad_enabled():
                return  # only training forwards of sampled steps
            started = time.perf_counter()
            output = first_tensor(output)
            if output is not None and output.is_floating_point() and output.numel() > 0:
                self._layers[name] = activation_statistics(module, output)
                self._order.append(name)
                self._layers[name]["_type"] = type(module).__name__  # type: ignore[assignment]
            elapsed = time.perf_counter() - started
            self.spent += elapsed
            self._sample_seconds += elapsed

        return record

    def _record_gradients(self, trainer: Trainer) -> None:
        """Per-layer gradient norms as the optimizer will use them: divided by the fp16 loss
        scale, and times the clipping factor when ``train.grad_clip_norm`` is set."""
        started = time.perf_counter()
        scaler = trainer.precision.scaler
        scale = float(scaler.get_scale()) if scaler.is_enabled() else 1.0
        norms: dict[str, torch.Tensor] = {}
        for name, module in weighted_leaves(trainer.model):
            grads = [whole(p.grad) for p in module.parameters(recurse=False) if p.grad is not None]
            if grads and name in self._layers:
                norms[name] = torch.stack([g.detach().float().norm() for g in grads]).norm() / scale
        limit = getattr(trainer.clipper, "max_norm", None)
        if norms and limit:
            total = torch.stack(list(norms.values())).norm()
            factor = (limit / (total + 1e-6)).clamp(max=1.0)
            for name, norm in norms.items():
                self._layers[name]["grad_norm_raw"] = norm
                norms[name] = norm * factor
        for name, norm in norms.items():
            self._layers[name]["grad_norm"] = norm
        self._sample_seconds += time.perf_counter() - started

    def _finish_sample(self, trainer: Trainer) -> None:
        started = time.perf_counter()
        self._sampling = False
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        for name, module in weighted_leaves(trainer.model):
            before = self._before.get(name)
            if name in self._layers and before:
                after = [whole(p.detach()) for p in module.parameters(recurse=False)]
                self._layers[name].update(update_statistics(before, after))
        self._before = {}
        layers = {}
        for name in self._order:
            stats = self._layers[name]
            kind = stats.pop("_type")
            names = list(stats)
            values = torch.stack([stats[key].detach().float().cpu() for key in names]).tolist()
            layers[name] = {
                "type": kind,
                **{k: _clean(v) for k, v in zip(names, values, strict=True)},
            }
        loss = None if trainer.last_loss is None else _clean(float(trainer.last_loss))  # a trend
        record = {"kind": "sample", "step": trainer.state.step, "epoch": trainer.state.epoch}
        self._write({**record, "loss": loss, "lr": trainer.current_lr(), "layers": layers})
        self._last_sample = trainer.state.step
        self._sample_cost = self._sample_seconds + time.perf_counter() - started

    def _write_first_loss(self, trainer: Trainer) -> None:
        """The loss of the very first step: the starting point of the loss-trend checks."""
        loss = trainer.running_loss()
        if loss is not None:
            self._write({"kind": "first_loss", "step": 1, "loss": _clean(loss)})

    def _replay_nonfinite(self, model: nn.Module) -> None:
        """The output just became non-finite and the weights are not updated yet: run the same
        batch again (eval mode, no RNG) with hooks to find the first layer that overflowed."""
        if self._last_inputs is not None:
            self._sampling = False
            self._first_nonfinite = (
                datachecks.first_nonfinite_layer(model, self._last_inputs, None)
                or "none (every layer output was finite)"
            )

    def _remove_hooks(self) -> None:
        for hook in [*self._hooks, *self._root_hooks]:
            hook.remove()
        self._hooks, self._root_hooks = [], []

    # --------------------------------------------------------- data and examples
    def _write_data_checks(self, trainer: Trainer) -> None:
        """At fit end, when the training time is known: input scale and class counts (bounded
        subsets) always; the duplicate search over every row when the budget covers it."""
        if self.bundle is None or any(r.get("kind") == "data" for r in self.records):
            return
        affordable = datachecks.duplicate_seconds(self.bundle) <= self.fit_end_allowance()
        record = datachecks.check_bundle(self.bundle, duplicates=affordable)
        self._write({"kind": "data", "step": 0, **record})

    def _write_examples(self, trainer: Trainer) -> None:
        """Per-example losses on the training rows, and label agreement on the validation rows,
        that the budget covers (``datachecks.label_checks``)."""
        if self.bundle is None or not getattr(trainer.task, "is_classifier", False):
            return
        steps = max(1, trainer.state.step - self._first_step)
        batch = max(1, getattr(trainer.train_loader, "batch_size", 64) or 64)
        per_row = self.trained_seconds() / (3 * steps * batch)
        allowance, whole = self.fit_end_allowance(), not trainer.execution.shards_state
        record = datachecks.label_checks(
            trainer.model, self.bundle, trainer.device, allowance, per_row, validation=whole
        )
        if record is not None:
            self._write({"kind": "examples", "step": trainer.state.step, **record})

    def _locate_nonfinite(self, trainer: Trainer, error: Exception) -> None:
        record: dict[str, Any] = {"kind": "nonfinite", "step": trainer.state.step}
        record["message"] = str(error)
        record["parameters"] = [
            name for name, p in trainer.model.named_parameters() if not torch.isfinite(p).all()
        ][:10]
        if self._first_nonfinite is not None:
            record["first_layer"] = self._first_nonfinite
            record["seen_in"] = "the failing batch, before the update"
        elif self.bundle is not None:
            record["first_layer"] = datachecks.first_nonfinite_layer(
                trainer.model, self.bundle.train, trainer.device
            )
        self._write(record)

    # ------------------------------------------------------------- the doctor
    def diagnose(self, trainer: Trainer) -> list[Any]:
        from fathom.diagnosis.doctor import diagnose_records, save_diagnosis

        metrics = list(getattr(trainer.log, "records", []))
        self.diagnoses = diagnose_records(
            self.records, metrics, getattr(trainer.task, "is_classifier", False)
        )
        if self.run_dir is not None:
            save_diagnosis(self.run_dir, self.diagnoses, self.records, self.room_for_figures())
        return self.diagnoses

    # ------------------------------------------------------------ bookkeeping
    def _write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(json.dumps(record) + "\n")

    def _keep_records_until(self, step: int) -> None:
        """On resume keep the records up to the checkpoint's step (like metrics.jsonl)."""
        if self.path is None or not self.path.exists():
            return
        if step == 0:
            self.path.unlink()
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [json.loads(line) for line in lines if line.endswith("}") and _step(line) <= step]
        self.records = [r for r in kept if r.get("kind") in ("data", "sample", "first_loss")]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.records))

    def _guard(self, what: str, action: Callable[[], Any]) -> None:
        started = time.perf_counter()
        try:
            action()
        except Exception as error:  # noqa: BLE001 - diagnostics must never stop training
            self._remove_hooks()
            self._sampling = False
            if what not in self._failed:
                self._failed.add(what)
                warnings.warn(f"diagnostics ({what}) skipped: {error}", stacklevel=2)
        finally:
            self.spent += time.perf_counter() - started


def _step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 1 << 62


def _clean(value: float) -> float | None:
    return value if math.isfinite(value) else None


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``RUN/diagnostics.jsonl`` (empty when the run had diagnostics off)."""
    path = Path(run_dir) / DIAGNOSTICS_FILE
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip().endswith("}")]
