import pytest
import torch
from torch import nn

from fathom.config import EarlyStoppingConfig, OptimConfig, ScheduleConfig, TrainConfig
from fathom.data.bundle import DataInfo, Split
from fathom.data.loader import TensorLoader
from fathom.engine import EVENTS, Callback, EarlyStopping, Trainer
from fathom.errors import ConfigError, TrainingDiverged
from fathom.tasks.classification import Classification
from fathom.tasks.regression import Regression


def make_trainer(bundle, model=None, callbacks=(), batch_size=16, optim=None, **train):
    torch.manual_seed(0)
    model = model or nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    return Trainer(
        model,
        Classification(3),
        TensorLoader(bundle.train, batch_size, shuffle=True, seed=0),
        TensorLoader(bundle.val, 64),
        train=TrainConfig(**{"epochs": 5, **train}),
        optim=optim or OptimConfig(name="adam", lr=0.01),
        schedule=ScheduleConfig(name="cosine", warmup_epochs=1),
        callbacks=callbacks,
    )


def test_trainer_learns_blobs(blobs):
    trainer = make_trainer(blobs)
    state = trainer.fit()
    assert state.epoch == 5 and state.step == 5 * len(trainer.train_loader)
    assert trainer.last_evaluation["accuracy"] > 0.95
    assert [record["kind"] for record in trainer.log.records].count("val") == 5
    assert state.best_metric == max(entry["accuracy"] for entry in state.history)


def test_events_fire_in_the_documented_order(blobs):
    class Recorder(Callback):
        def __init__(self):
            self.events = []

    recorder = Recorder()
    for event in EVENTS:
        setattr(recorder, event, lambda trainer, event=event: recorder.events.append(event))
    make_trainer(blobs, callbacks=[recorder], epochs=1, batch_size=84).fit()
    assert recorder.events == [
        "fit_start", "epoch_start",
        "batch_start", "after_backward", "batch_end",
        "batch_start", "after_backward", "batch_end",
        "evaluation_end", "epoch_end", "fit_end",
    ]  # fmt: skip


def test_gradient_accumulation_matches_a_larger_batch(blobs):
    sgd = OptimConfig(name="sgd", lr=0.1, momentum=0.0)
    small = make_trainer(blobs, batch_size=21, accumulate_steps=4, optim=sgd, epochs=1)
    large = make_trainer(blobs, batch_size=84, optim=sgd, epochs=1)
    small.train_loader.shuffle = large.train_loader.shuffle = False
    small.fit()
    large.fit()
    for a, b in zip(small.model.parameters(), large.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_l2_penalty_shrinks_weights_and_ema_lags(blobs):
    plain = make_trainer(blobs, epochs=3)
    plain.fit()
    penalised = make_trainer(blobs, epochs=3, l2=0.5)
    penalised.fit()
    norm = lambda trainer: sum(p.norm() for p in trainer.model.parameters() if p.dim() > 1)  # noqa: E731
    assert norm(penalised) < 0.8 * norm(plain)
    averaged = make_trainer(blobs, epochs=3, ema_decay=0.9)
    averaged.fit()
    shadow, live = averaged.ema.shadow.parameters(), averaged.model.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(shadow, live, strict=True))


def test_gradient_clipping_bounds_the_update(blobs):
    class Watch(Callback):
        norms = []

        def batch_end(self, trainer):
            pass

    sgd = OptimConfig(name="sgd", lr=1.0, momentum=0.0)
    trainer = make_trainer(blobs, epochs=1, batch_size=168, optim=sgd, grad_clip_norm=0.01)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.fit()
    change = torch.cat(
        [(p - b).reshape(-1) for p, b in zip(trainer.model.parameters(), before, strict=True)]
    )
    assert change.norm() <= 0.01 * len(trainer.train_loader) + 1e-6


def test_nan_loss_stops_with_the_step(blobs):
    bad = Split(blobs.train.inputs.clone(), blobs.train.targets)
    bad.inputs[50:] = float("nan")
    blobs.train = bad
    trainer = make_trainer(blobs)
    trainer.train_loader.shuffle = False
    with pytest.raises(TrainingDiverged, match="at step 4 "):
        trainer.fit()


def test_early_stopping_and_max_steps(blobs):
    stop = EarlyStoppingConfig(metric="val_accuracy", patience=1)
    trainer = make_trainer(
        blobs, epochs=50, callbacks=[EarlyStopping(stop.metric, stop.patience, stop.mode)]
    )
    state = trainer.fit()
    assert state.epoch < 50 and "early stopping" in state.stop_reason
    limited = make_trainer(blobs, max_steps=7).fit()
    assert limited.step == 7 and "max_steps" in limited.stop_reason


def test_regression_task_fits_a_linear_function():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(400, 4, generator=generator)
    targets = inputs @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(
        400, generator=generator
    )
    train, val = Split(inputs[:300], targets[:300]), Split(inputs[300:], targets[300:])
    trainer = Trainer(
        nn.Linear(4, 1), Regression(), TensorLoader(train, 32, shuffle=True), TensorLoader(val, 100),
        train=TrainConfig(epochs=20), optim=OptimConfig(name="adam", lr=0.05),
    )  # fmt: skip
    trainer.fit()
    assert trainer.last_evaluation["r2"] > 0.98
    assert trainer.last_evaluation["rmse"] < 0.3


def test_max_seconds_ends_the_schedule_with_the_time_budget(blobs, monkeypatch):
    clock = iter(range(0, 10**6))  # every reading of the clock is one second later
    monkeypatch.setattr("fathom.engine.trainer.time.perf_counter", lambda: float(next(clock)))
    trainer = make_trainer(blobs, batch_size=4, epochs=50, max_seconds=200.0)
    planned = trainer.schedule.total_steps
    trainer.fit()
    assert trainer.state.stop_reason.startswith("reached train.max_seconds")
    assert trainer.schedule.total_steps < planned
    assert trainer.schedule.total_steps - trainer.state.optimizer_steps <= 20
    assert trainer.current_lr() < 0.01 * 0.2  # annealed near the end, not cut off at peak


def test_an_early_stopping_metric_the_task_does_not_report_is_refused_at_start(blobs):
    with pytest.raises(ConfigError, match="reports no 'val_los'.*did you mean 'val_loss'"):
        make_trainer(blobs, early_stopping=EarlyStoppingConfig(metric="val_los"))
    make_trainer(blobs, early_stopping=EarlyStoppingConfig(metric="val_accuracy"))


def test_early_stopping_without_a_validation_split_is_refused(blobs):
    with pytest.raises(ConfigError, match="needs a validation split"):
        Trainer(
            nn.Linear(6, 3), Classification(3), TensorLoader(blobs.train, 16), None,
            train=TrainConfig(early_stopping=EarlyStoppingConfig()),
        )  # fmt: skip


def test_grad_clip_norm_zero_turns_clipping_off(blobs):
    trainer = make_trainer(blobs, grad_clip_norm=0.0, grad_clip_value=0.0)
    assert not trainer.clipper
    assert trainer.fit().step > 0


def test_regression_on_class_labels_is_refused():
    info = DataInfo("digits", "classification", (64,), num_classes=10)
    with pytest.raises(ConfigError, match="task regression needs numeric targets"):
        Regression.for_data(info)
