"""The sabotage suite: every planted fault is diagnosed, healthy runs get no diagnosis, and the
automatic remedies bring the accuracy back close to the healthy run's."""

from __future__ import annotations

import pytest

import fathom
from fathom.api.inspection import run_planted_fault
from fathom.diagnosis import sabotage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits():
    return fathom.data.load("digits", seed=0)


@pytest.fixture(scope="module")
def healthy_accuracy(digits):
    keys, accuracy = run_planted_fault(sabotage.healthy(digits))
    assert keys == [], f"false alarm on a healthy run: {keys}"
    assert accuracy > 0.9
    return accuracy


def test_healthy_cnn_gets_no_diagnosis(digits):
    import torch

    torch.manual_seed(0)
    model = fathom.models.create(
        "cnn", num_classes=10, in_channels=1, image_size=8, channels=[16, 32], hidden=64
    )
    keys, accuracy = run_planted_fault(sabotage.Setup(model, digits, []))
    assert keys == [] and accuracy > 0.9


FAULTS = [fault for fault in sabotage.FAULTS if fault.expected is not None]


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_planted_fault_is_diagnosed(fault, digits, healthy_accuracy):
    keys, accuracy = run_planted_fault(fault.build(digits))
    assert fault.expected in keys, f"{fault.name}: doctor said {keys}"
    assert len(keys) <= 2, f"{fault.name}: too many diagnoses {keys}"
    if fault.remedy is not None:
        assert accuracy is None or accuracy < healthy_accuracy - 0.05  # the fault really hurts
        repaired_keys, repaired = run_planted_fault(fault.remedy(fault.build(digits)))
        assert repaired is not None and repaired > healthy_accuracy - 0.05, fault.name
        assert fault.expected not in repaired_keys
