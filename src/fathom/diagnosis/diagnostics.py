"""Training diagnostics: a callback that samples layer statistics every few steps, cheaply.

On a sampled step forward hooks (registered for that step only) record each leaf layer's
activation mean/std, its dead-ReLU fraction and sigmoid/tanh saturation; ``after_backward``
records per-layer gradient norms; ``batch_end`` weight norms and update-to-weight ratios. Data
checks (scale, class balance, duplicates across splits) run once at fit start and per-example
training losses once at fit end. Everything goes to ``RUN/diagnostics.jsonl``; at fit end the
doctor turns it into ``RUN/diagnosis.json``, plots and a report section. The only per-step
cost is one hook on the whole model checking that its output is finite (every step on CPU, on
sampled steps on accelerators); when it is not, the same batch is run again through hooks before
the weights are updated, to name the first layer that produced a NaN/Inf. Nothing here draws a
random number, and any failure becomes a warning: diagnostics never stop training.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fathom.data.bundle import DataBundle
from fathom.diagnosis import datachecks
from fathom.engine.callbacks import Callback
from fathom.errors import TrainingDiverged

if TYPE_CHECKING:
    from fathom.engine.trainer import Trainer

DIAGNOSTICS_FILE = "diagnostics.jsonl"
SAMPLES_PER_EPOCH = 2
MIN_INTERVAL = 20
MAX_INTERVAL = 50
RELU_TYPES = (nn.ReLU, nn.ReLU6)
SATURATING = {nn.Sigmoid: (0.01, 0.99), nn.Tanh: (-0.99, 0.99), nn.Hardtanh: (-0.99, 0.99)}


def sample_interval(steps_per_epoch: int) -> int:
    """About twice per epoch, but every 20 to 50 steps (at most 5% of the steps are sampled):
    a pure function of the loader, so a resumed run samples the same steps."""
    return max(MIN_INTERVAL, min(MAX_INTERVAL, steps_per_epoch // SAMPLES_PER_EPOCH))


def _units_max(output: torch.Tensor) -> torch.Tensor:
    """Per-unit maximum over the batch (channels of images, features of vectors)."""
    if output.dim() == 4 or output.dim() == 2:
        return output.transpose(0, 1).reshape(output.shape[1], -1).amax(dim=1)
    return output.reshape(-1, output.shape[-1]).amax(dim=0)


def activation_statistics(module: nn.Module, output: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean and std of a layer's output, plus dead or saturated fractions for activations."""
    values = output.detach().float()
    stats = {"mean": values.mean(), "std": values.std() if values.numel() > 1 else values.sum() * 0}
    if isinstance(module, RELU_TYPES) and values.dim() >= 2:
        stats["dead"] = (_units_max(values) <= 0).float().mean()
    for kind, (low, high) in SATURATING.items():
        if isinstance(module, kind):
            stats["saturated"] = ((values <= low) | (values >= high)).float().mean()
    return stats


class Diagnostics(Callback):
    """Collects training statistics into ``RUN/diagnostics.jsonl`` and diagnoses the run at the end.

    ``bundle`` (the data as the model sees it) enables the data checks and the label-noise
    check; ``run_dir=None`` keeps the records in memory (``self.records``).
    """

    order = 50

    def __init__(
        self, run_dir: Path | None = None, bundle: DataBundle | None = None, every: int = 0
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.path = self.run_dir / DIAGNOSTICS_FILE if self.run_dir is not None else None
        self.bundle = bundle
        self.every = every
        self.records: list[dict[str, Any]] = []
        self.diagnoses: list[Any] = []
        self._hooks: list[Any] = []
        self._layers: dict[str, dict[str, torch.Tensor]] = {}
        self._order: list[str] = []
        self._before: dict[str, list[torch.Tensor]] = {}
        self._sampling = False
        self._root_hooks: list[Any] = []
        self._output_finite = True
        self._last_inputs: torch.Tensor | None = None
        self._first_nonfinite: str | None = None
        self._failed: set[str] = set()

    # ----------------------------------------------------------------- events
    def fit_start(self, trainer: Trainer) -> None:
        if not self.every:
            self.every = sample_interval(len(trainer.train_loader))
        self._guard("resume", lambda: self._keep_records_until(trainer.state.step))
        if not any(record.get("kind") == "data" for record in self.records):
            self._guard("data checks", lambda: self._write(self._data_record(trainer)))
        self._guard("hooks", lambda: self._add_hooks(trainer.model))

    def batch_start(self, trainer: Trainer) -> None:
        if trainer.state.step == 0 or (trainer.state.step + 1) % self.every == 0:
            self._guard("sample", lambda: self._start_sample(trainer.model))

    def after_backward(self, trainer: Trainer) -> None:
        if not self._output_finite and self._first_nonfinite is None:
            self._guard("non-finite", lambda: self._replay_nonfinite(trainer.model))
        if self._sampling:
            self._guard("gradients", lambda: self._record_gradients(trainer.model))

    def batch_end(self, trainer: Trainer) -> None:
        if self._sampling:
            self._guard("sample", lambda: self._finish_sample(trainer))

    def fit_end(self, trainer: Trainer) -> None:
        self._remove_hooks()
        self._guard("examples", lambda: self._write_examples(trainer))
        self._guard("doctor", lambda: self.diagnose(trainer))

    def fit_failed(self, trainer: Trainer) -> None:
        """Training raised (``trainer.failure``): for ``TrainingDiverged``, find where."""
        self._remove_hooks()
        error = trainer.failure
        if not isinstance(error, TrainingDiverged):
            return
        self._guard("non-finite", lambda: self._locate_nonfinite(trainer, error))
        self._guard("doctor", lambda: self.diagnose(trainer))

    # ---------------------------------------------------------------- samples
    def _add_hooks(self, model: nn.Module) -> None:
        """One cheap hook on the whole model for every step: is its output finite?"""
        self._root_hooks.append(model.register_forward_hook(self._watch_output))

    def _watch_output(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if torch.is_grad_enabled() and isinstance(output, torch.Tensor) and inputs:
            self._last_inputs = inputs[0]
            if output.is_floating_point() and (output.device.type == "cpu" or self._sampling):
                self._output_finite = bool(torch.isfinite(output.detach()).all())

    def _start_sample(self, model: nn.Module) -> None:
        """Hooks on every leaf layer, for this step only, and a copy of the weights."""
        self._layers, self._order, self._sampling = {}, [], True
        for name, module in model.named_modules():
            if next(module.children(), None) is None:
                self._hooks.append(module.register_forward_hook(self._hook(name or "model")))
        self._before = {
            name: [p.detach().clone() for p in module.parameters(recurse=False)]
            for name, module in _weighted_leaves(model)
        }

    def _hook(self, name: str) -> Callable[..., None]:
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            if not self._sampling or name in self._layers or not torch.is_grad_enabled():
                return  # only training forwards of sampled steps
            if not isinstance(output, torch.Tensor) or not output.is_floating_point():
                return
            if output.numel() == 0:
                return
            self._layers[name] = activation_statistics(module, output)
            self._order.append(name)
            self._layers[name]["_type"] = type(module).__name__  # type: ignore[assignment]

        return record

    def _record_gradients(self, model: nn.Module) -> None:
        for name, module in _weighted_leaves(model):
            grads = [p.grad for p in module.parameters(recurse=False) if p.grad is not None]
            if grads and name in self._layers:
                norms = torch.stack([g.detach().float().norm() for g in grads])
                self._layers[name]["grad_norm"] = norms.norm()

    def _finish_sample(self, trainer: Trainer) -> None:
        self._sampling = False
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        for name, module in _weighted_leaves(trainer.model):
            before = self._before.get(name)
            if name not in self._layers or not before:
                continue
            after = [p.detach() for p in module.parameters(recurse=False)]
            weight = torch.stack([p.float().norm() for p in before]).norm()
            change = torch.stack(
                [(a.float() - b.float()).norm() for a, b in zip(after, before, strict=True)]
            )
            self._layers[name]["weight_norm"] = weight
            self._layers[name]["update_ratio"] = change.norm() / weight.clamp_min(1e-12)
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
        record = {"kind": "sample", "step": trainer.state.step, "epoch": trainer.state.epoch}
        self._write({**record, "layers": layers})

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
    def _data_record(self, trainer: Trainer) -> dict[str, Any]:
        record: dict[str, Any] = {"kind": "data", "step": 0}
        if self.bundle is not None:
            record.update(datachecks.check_bundle(self.bundle))
        return record

    def _write_examples(self, trainer: Trainer) -> None:
        if self.bundle is None or getattr(trainer.task, "name", "") != "classification":
            return
        losses = datachecks.example_losses(trainer.model, self.bundle.train, trainer.device)
        if losses is not None:
            self._write({"kind": "examples", "step": trainer.state.step, **losses})

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
        self.diagnoses = diagnose_records(self.records, metrics, trainer.task.name)
        if self.run_dir is not None:
            save_diagnosis(self.run_dir, self.diagnoses, self.records)
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
        from fathom.files import atomic_write_text

        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.endswith("}") and _step(line) <= step]
        self.records = [json.loads(line) for line in kept]
        self.records = [r for r in self.records if r.get("kind") in ("data", "sample")]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.records))

    def _guard(self, what: str, action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception as error:  # noqa: BLE001 - diagnostics must never stop training
            self._remove_hooks()
            self._sampling = False
            if what not in self._failed:
                self._failed.add(what)
                warnings.warn(f"diagnostics ({what}) skipped: {error}", stacklevel=2)


def _weighted_leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name or "model", module)
        for name, module in model.named_modules()
        if next(module.children(), None) is None
        and any(p.requires_grad for p in module.parameters(recurse=False))
    ]


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
