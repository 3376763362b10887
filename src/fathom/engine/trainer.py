"""The training loop. ``Trainer.fit`` reads top to bottom; extend it with callbacks or a task."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fathom.config import OptimConfig, ScheduleConfig, TrainConfig
from fathom.engine import checkpoint_files as ckpt
from fathom.engine.callbacks import EVENTS, Callback, StopTraining, check_early_stopping
from fathom.engine.distributed import Execution
from fathom.engine.ema import ModelEMA
from fathom.engine.features import GradientClipper, Precision, WeightPenalty, reuse_freed_cpu_memory
from fathom.engine.log import MetricsLog
from fathom.engine.optim import Schedule, build_optimizer
from fathom.engine.state import TrainState
from fathom.errors import ConfigError, FathomError, TrainingDiverged

if TYPE_CHECKING:
    from fathom.engine.task import TrainingTask


class Trainer:
    """Trains ``model`` on ``task`` with the loaders given; the plumbing, not the maths."""

    def __init__(
        self,
        model: nn.Module,
        task: TrainingTask,
        train_loader: Any,
        val_loader: Any = None,
        *,
        train: TrainConfig | None = None,
        optim: OptimConfig | None = None,
        schedule: ScheduleConfig | None = None,
        callbacks: Iterable[Callback] = (),
        log: MetricsLog | None = None,
        device: torch.device | str = "cpu",
        execution: Execution | None = None,
    ) -> None:
        self.config = train or TrainConfig()
        self.execution = execution or Execution()  # one process, DDP or FSDP: the only seam
        self.device = self.execution.device(torch.device(device))
        if self.device.type == "cpu" and self.config.reuse_cpu_memory:
            reuse_freed_cpu_memory()
        self.model = model.to(self.device)
        if self.config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        network = self.execution.wrap(self.model, self.device)
        self.network = torch.compile(network) if self.config.compile else network
        self.task = task
        self.train_loader, self.val_loader = self.execution.shard(train_loader), val_loader
        check_early_stopping(self.config.early_stopping, task, val_loader is not None)
        self.epochs = self.config.epochs
        self.state = TrainState()
        self.log = log or MetricsLog()
        self.callbacks = sorted(callbacks, key=lambda callback: callback.order)
        self.precision = Precision(self.config.precision, self.device)
        self.clipper = GradientClipper(self.config.grad_clip_norm, self.config.grad_clip_value)
        self.penalty = WeightPenalty(self.model, self.config.l1, self.config.l2)
        self.accumulate = self.config.accumulate_steps
        self.optimizers = self._build_optimizers(optim or OptimConfig())
        self.schedule = self._build_schedule(schedule or ScheduleConfig())
        self.ema = ModelEMA(self.model, self.config.ema_decay) if self.config.ema_decay else None
        self.last_evaluation: dict[str, Any] = {}
        self.last_details: dict[str, Any] = {}
        self.last_loss: torch.Tensor | None = None  # the latest batch's first-phase loss
        self.failure: Exception | None = None  # the error that ended training, for fit_failed
        self._running: dict[str, torch.Tensor] = {}
        self._running_count = 0
        self._clock = time.perf_counter()
        self._logged_samples = 0
        self._checked = False
        self._fit_started = time.perf_counter()
        self._updates_at_start = 0

    def _build_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per phase of the task (one, ``main``, for most tasks)."""
        groups = self.task.optimizer_groups(self.model)
        if len(groups) > 1 and self.accumulate > 1:
            raise ConfigError(
                "train.accumulate_steps > 1 is not supported for multi-optimizer tasks"
            )
        return {name: build_optimizer(params, optim, self.model) for name, params in groups.items()}

    def _build_schedule(self, schedule: ScheduleConfig) -> Schedule:
        """The learning-rate schedule over the updates training will make."""
        updates_per_epoch = math.ceil(len(self.train_loader) / self.accumulate)
        total_updates = updates_per_epoch * self.epochs
        if self.config.max_steps:  # schedules (cosine, one-cycle) end where training ends
            total_updates = min(total_updates, math.ceil(self.config.max_steps / self.accumulate))
        return Schedule(schedule, updates_per_epoch, total_updates)

    # ----------------------------------------------------------------- the loop
    def fit(self) -> TrainState:
        """Train until ``epochs`` are done, a callback stops training, or ``max_steps`` is reached."""
        self._apply_schedule()
        self._fit_started = time.perf_counter()
        self._updates_at_start = self.state.optimizer_steps
        self.fire("fit_start")
        try:
            while self.state.epoch < self.epochs:
                self._stop_if_done()  # a resumed run that had reached its cap trains no more
                self.fire("epoch_start")
                self.model.train()
                for batch in self.train_loader:
                    self.fire("batch_start")
                    self.train_step(batch)
                    self.fire("batch_end")
                    self._stop_if_done()
                self.state.epoch += 1
                self._log_training()
                if self.val_loader is not None:
                    self.last_evaluation, self.last_details = self.evaluate(self.val_loader)
                    self._record_evaluation()
                self.fire("evaluation_end")
                self.fire("epoch_end")
        except StopTraining as stop:
            self.state.stop_reason = stop.reason
            self.state.stopped_by_callback = not stop.limit
            self._log_training()
        except FathomError as error:
            self.failure = error
            self.fire("fit_failed")
            raise
        self.fire("fit_end")
        return self.state

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Forward, backward and (at accumulation boundaries) one update per optimizer phase."""
        if not self._checked:
            self.task.check_batch(self.network, batch)
            self._checked = True
        position = getattr(self.train_loader, "position", self.state.step + 1)
        boundary = position % self.accumulate == 0 or position >= len(self.train_loader)
        for phase, optimizer in self.optimizers.items():
            if len(self.optimizers) > 1:  # each phase steps with its own gradients only
                self.model.zero_grad(set_to_none=True)
            with self.precision.autocast():
                loss, values = self.task.training_loss(phase, self.network, batch)
                if self.penalty:
                    loss = loss + self.penalty()
            weighted = self.execution.scale_loss(loss, self.train_loader)
            self.precision.backward(weighted / self.accumulate if self.accumulate > 1 else weighted)
            self.fire("after_backward")
            if boundary:
                self.precision.unscale(optimizer)
                if self.clipper:
                    self.clipper([p for group in optimizer.param_groups for p in group["params"]])
                self.precision.step(optimizer)
                optimizer.zero_grad(set_to_none=True)
            self._accumulate_logs(phase, loss, values)
        self.state.step += 1
        self.state.samples_seen += len(batch[0])
        if boundary:
            self.state.optimizer_steps += 1
            if self.config.max_seconds and self.state.optimizer_steps % 20 == 0:
                self._end_schedule_within_time()
            self._apply_schedule()
            if self.ema is not None:
                self.ema.update(self.model, self.state.optimizer_steps)
        if self.device.type == "cpu" or self.state.step % self.config.log_every_steps == 0:
            self.check_finite()
        if self.state.step % self.config.log_every_steps == 0:
            self._log_training()

    def evaluate(self, loader: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Metrics of the task over ``loader`` (EMA weights when EMA is on): (scalars, details)."""
        network = self.ema.shadow if self.ema is not None else self.network
        return evaluate(network, self.task, loader, self.device, self.precision)

    def validation_inputs(self, count: int) -> torch.Tensor | None:
        """The first ``count`` validation (else training) inputs in memory, loaders unmoved."""
        loader = self.val_loader if self.val_loader is not None else self.train_loader
        inputs = getattr(loader, "inputs", None)
        return None if inputs is None else inputs[:count]

    def _stop_if_done(self) -> None:
        """Raise ``StopTraining`` once ``max_steps`` or ``max_seconds`` is spent, or at once when a
        restored state was stopped for good by a callback; a raised cap trains on after resume."""
        if self.state.stopped_by_callback:
            raise StopTraining(self.state.stop_reason or "stopped")
        if self.config.max_steps and self.state.step >= self.config.max_steps:
            raise StopTraining(f"reached train.max_steps={self.config.max_steps}", limit=True)
        if self.config.max_seconds and self._seconds_by_rank_0() >= self.config.max_seconds:
            raise StopTraining(f"reached train.max_seconds={self.config.max_seconds:g}", limit=True)

    def _training_seconds(self) -> float:
        """Seconds of training so far in this run, resumed parts included."""
        return self.state.elapsed_seconds + time.perf_counter() - self._fit_started

    def _seconds_by_rank_0(self) -> float:
        """``_training_seconds`` as rank 0 measured them, on every rank: decisions taken on them
        (stop, end the schedule) then fall on the same step everywhere, as collectives need."""
        return self.execution.broadcast(self._training_seconds())

    def fire(self, event: str) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self)

    # ------------------------------------------------------------ bookkeeping
    def _apply_schedule(self) -> None:
        for optimizer in self.optimizers.values():
            self.schedule.apply(optimizer, self.state.optimizer_steps)

    def _end_schedule_within_time(self) -> None:
        """With ``train.max_seconds``, decaying schedules end when the time budget runs out."""
        updates = self.state.optimizer_steps - self._updates_at_start
        if updates >= 20:
            spent = self._seconds_by_rank_0()
            pace = (spent - self.state.elapsed_seconds) / updates
            left = self.config.max_seconds - spent
            self.schedule.end_within(self.state.optimizer_steps, pace, left)

    def _accumulate_logs(
        self, phase: str, loss: torch.Tensor, values: dict[str, torch.Tensor]
    ) -> None:
        if phase == next(iter(self.optimizers)):
            self.last_loss = loss.detach()
        prefix = "" if phase == "main" else f"{phase}_"
        for key, value in {"loss": loss, **values}.items():
            name = prefix + key
            total = self._running.get(name)
            self._running[name] = (
                value.detach().float() if total is None else total + value.detach().float()
            )
        if phase == next(iter(self.optimizers)):
            self._running_count += 1

    def check_finite(self) -> None:
        """Stop with a clear message if the loss has become NaN or infinite."""
        loss = self._running.get("loss", next(iter(self._running.values()), None))
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"training diverged: loss is {float(loss)} at step {self.state.step} "
                f"(epoch {self.state.epoch + 1}); the last good checkpoint is kept. "
                "Try a lower optim.lr or set train.grad_clip_norm"
            )

    def _log_training(self) -> None:
        if not self._running_count:
            return
        now = time.perf_counter()
        samples = self.state.samples_seen - self._logged_samples
        running = self.execution.mean(self._running)
        record = {
            "kind": "train",
            "step": self.state.step,
            "epoch": self.state.epoch
            + getattr(self.train_loader, "position", 0) / max(1, len(self.train_loader)),
            **{key: float(value) / self._running_count for key, value in running.items()},
            "lr": self.current_lr(),
            "samples_per_second": samples / max(now - self._clock, 1e-9),
        }
        self.log.write(record)
        self.state.metrics_lines += 1
        self._running, self._running_count = {}, 0
        self._clock, self._logged_samples = now, self.state.samples_seen

    def _record_evaluation(self) -> None:
        state, task = self.state, self.task
        entry = {"kind": "val", "step": state.step, "epoch": state.epoch, **self.last_evaluation}
        self.log.write(entry)
        state.metrics_lines += 1
        state.history.append(entry)
        value = self.last_evaluation.get(task.monitor)
        better = state.best_metric is None or (
            value < state.best_metric if task.monitor_mode == "min" else value > state.best_metric
        )
        if value is not None and better:
            state.best_metric, state.best_epoch = value, state.epoch

    def running_loss(self) -> float | None:
        """Mean training loss of the steps since the last log line (None before the first)."""
        loss = self._running.get("loss")
        return (
            float(loss) / self._running_count if loss is not None and self._running_count else None
        )

    def current_lr(self) -> float:
        return float(next(iter(self.optimizers.values())).param_groups[0]["lr"])

    # ----------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything needed to continue exactly: tensors and a JSON-able state. With sharded
        weights (FSDP) every rank calls it, and rank 0 gets the full model and optimizers."""
        tensors = ckpt.prefixed("model", self.execution.model_state(self.model))
        saved: dict[str, Any] = {"train_state": self.state.to_dict(), "optimizers": {}}
        if self.config.max_seconds:  # the time spent counts against the budget after a resume;
            # without a budget it stays out, so that equal runs write equal checkpoint bytes
            saved["train_state"]["elapsed_seconds"] = self._training_seconds()
        for name, optimizer in self.optimizers.items():
            optimizer_tensors, saved["optimizers"][name] = ckpt.split_optimizer_state(
                self.execution.optimizer_state(self.model, optimizer)
            )
            tensors.update(ckpt.prefixed(f"optimizer/{name}", optimizer_tensors))
        if self.ema is not None:
            tensors.update(ckpt.prefixed("ema", self.ema.state_dict()))
        tensors.update(ckpt.prefixed("task", self.task.state_dict()))  # e.g. BYOL's target
        rng_tensors, saved["rng"] = ckpt.capture_rng()
        tensors.update(ckpt.prefixed("rng", rng_tensors))
        saved["loader"] = (
            self.train_loader.state_dict() if hasattr(self.train_loader, "state_dict") else None
        )
        saved["scaler"] = (
            self.precision.scaler.state_dict() if self.precision.scaler.is_enabled() else None
        )
        saved["schedule"] = {
            "name": self.schedule.config.name,
            "optimizer_steps": self.state.optimizer_steps,
        }
        saved["callbacks"] = {key: state for key, state in self._callback_states().items() if state}
        return tensors, saved

    def _callback_states(self) -> dict[str, dict[str, Any]]:
        """Each callback's ``state_dict`` under a key naming its class (and rank, if repeated)."""
        states: dict[str, dict[str, Any]] = {}
        for callback in self.callbacks:
            key = type(callback).__name__
            while key in states:
                key += "+"
            states[key] = callback.state_dict()
        return states

    def _restore_callbacks(self, saved: dict[str, Any]) -> None:
        stored = saved.get("callbacks")
        if stored is None:  # checkpoints before callback states: early stopping's counters
            legacy = saved["train_state"]
            wait = legacy.get("early_stopping_wait", 0)
            stored = {"EarlyStopping": {"best": legacy.get("early_stopping_best"), "wait": wait}}
        keys = list(self._callback_states())
        for key, callback in zip(keys, self.callbacks, strict=True):
            if key in stored:
                callback.load_state_dict(stored[key])

    def restore(self, tensors: dict[str, torch.Tensor], saved: dict[str, Any]) -> None:
        """Load a ``checkpoint_state`` back (model, optimizers, EMA, loader, RNG, step); with
        sharded weights every rank calls it with the full state and loads its shards."""
        self.execution.load_model_state(self.model, ckpt.unprefixed("model", tensors))
        for name, optimizer in self.optimizers.items():
            state = ckpt.join_optimizer_state(
                ckpt.unprefixed(f"optimizer/{name}", tensors), saved["optimizers"][name]
            )
            self.execution.load_optimizer_state(self.model, optimizer, state)
        if self.ema is not None:
            self.ema.load_state_dict(ckpt.unprefixed("ema", tensors))
        self.task.load_state_dict(ckpt.unprefixed("task", tensors))
        if saved.get("loader") is not None:
            self.train_loader.load_state_dict(saved["loader"])
        if saved.get("scaler") is not None:
            self.precision.scaler.load_state_dict(saved["scaler"])
        self.state = TrainState.from_dict(saved["train_state"])
        self._restore_callbacks(saved)
        self.log.truncate(self.state.metrics_lines)
        ckpt.restore_rng(ckpt.unprefixed("rng", tensors), saved["rng"])
        self._logged_samples = self.state.samples_seen
        self._running, self._running_count = {}, 0


@torch.no_grad()
def evaluate(
    network: nn.Module,
    task: TrainingTask,
    loader: Any,
    device: torch.device,
    precision: Precision | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``task``'s evaluation over ``loader`` in eval mode: (scalar metrics, details)."""
    precision = precision or Precision("fp32", device)
    was_training = network.training
    network.eval()
    metrics = task.new_metrics(device)
    if hasattr(loader, "position"):
        loader.position = 0
    for batch in loader:
        with precision.autocast():
            task.evaluation_step(network, batch, metrics)
    network.train(was_training)
    return metrics.compute(), metrics.details()


__all__ = ["EVENTS", "Callback", "StopTraining", "Trainer", "evaluate"]
