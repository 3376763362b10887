import math

import pytest
import torch

from fathom.config import OptimConfig, ScheduleConfig
from fathom.engine.optim import Schedule, build_optimizer


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_build_optimizer(name):
    parameter = torch.nn.Parameter(torch.ones(3))
    optimizer = build_optimizer([parameter], OptimConfig(name=name, lr=0.1, nesterov=True))
    parameter.sum().backward()
    optimizer.step()
    assert (parameter < 1).all()
    if name == "sgd":
        assert optimizer.param_groups[0]["nesterov"] is True


def test_warmup_is_linear_then_cosine_reaches_floor():
    schedule = Schedule(ScheduleConfig(name="cosine", warmup_epochs=1, min_lr_ratio=0.1), 10, 100)
    assert schedule.factor(0) == pytest.approx(0.1)
    assert schedule.factor(9) == pytest.approx(1.0)
    assert schedule.factor(10) == pytest.approx(1.0)
    assert schedule.factor(100) == pytest.approx(0.1)
    factors = [schedule.factor(step) for step in range(10, 101)]
    assert all(a >= b for a, b in zip(factors, factors[1:], strict=False))


def test_onecycle_peaks_at_peak_fraction():
    schedule = Schedule(
        ScheduleConfig(name="onecycle", peak_fraction=0.3, start_ratio=0.05), 10, 100
    )
    factors = [schedule.factor(step) for step in range(101)]
    assert factors[0] == pytest.approx(0.05)
    assert max(factors) == pytest.approx(1.0) and factors.index(max(factors)) == 30
    assert factors[-1] == pytest.approx(0.0)


def test_step_and_exponential():
    step = Schedule(ScheduleConfig(name="step", step_epochs=2, gamma=0.5), 10, 100)
    assert [step.factor(s) for s in (0, 19, 20, 45)] == [1.0, 1.0, 0.5, 0.25]
    exponential = Schedule(ScheduleConfig(name="exponential", gamma=0.9), 10, 100)
    assert exponential.factor(30) == pytest.approx(0.9**3)
    assert Schedule(ScheduleConfig(), 10, 100).factor(57) == 1.0


def test_apply_sets_group_rates_from_their_base():
    parameters = [torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))]
    optimizer = torch.optim.SGD(
        [{"params": [parameters[0]], "lr": 1.0}, {"params": [parameters[1]], "lr": 0.1}]
    )
    Schedule(ScheduleConfig(name="cosine"), 10, 100).apply(optimizer, 50)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.5, 0.05])
    assert math.isclose(optimizer.param_groups[0]["initial_lr"], 1.0)


def test_end_within_shortens_the_schedule_to_the_time_left_never_lengthens_it():
    schedule = Schedule(ScheduleConfig(name="cosine", min_lr_ratio=0.1), 100, 1000)
    schedule.end_within(updates_done=100, seconds_per_update=0.5, seconds_left=100.0)
    assert schedule.total_steps == 300
    assert schedule.factor(300) == pytest.approx(0.1)  # the floor is reached as time runs out
    schedule.end_within(updates_done=300, seconds_per_update=0.5, seconds_left=-5.0)
    assert schedule.total_steps == 301
    schedule.end_within(updates_done=100, seconds_per_update=0.001, seconds_left=100.0)
    assert schedule.total_steps == 1000  # never beyond the plan
    schedule.end_within(updates_done=100, seconds_per_update=0.0, seconds_left=100.0)
    assert schedule.total_steps == 1000
