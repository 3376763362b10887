"""Faults planted the way users plant them (``fathom train`` overrides on the embedded default),
the doctor's verdict read from the run folder, and the printed overrides applied to a rerun."""

from __future__ import annotations

import pytest

import fathom
from fathom.diagnosis import sabotage
from fathom.diagnosis.doctor import read_diagnosis
from fathom.errors import TrainingDiverged

pytestmark = pytest.mark.slow


def train(fault: sabotage.CliFault, tmp_path, extra=()) -> tuple[list, float | None]:
    """(diagnoses, test accuracy or None when training diverged), as `fathom train` leaves them."""
    overrides = [*fault.overrides, *extra, *sabotage.CLI_COMMON, f"run.dir={tmp_path}",
                 "run.report=false"]  # the doctor's verdict is diagnosis.json's  # fmt: skip
    try:
        run = fathom.fit(fault.model, fault.target, overrides=overrides)
    except TrainingDiverged:
        folder = max(tmp_path.iterdir(), key=lambda path: path.stat().st_mtime)
        return list(read_diagnosis(folder) or []), None
    accuracy = (run.summary.get("test") or {}).get("accuracy")
    return list(read_diagnosis(run.path) or []), accuracy


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    diagnoses, accuracy = train(sabotage.cli_fault("cnn_healthy"), tmp_path_factory.mktemp("ok"))
    assert diagnoses == [], [d.key for d in diagnoses]
    assert accuracy > 0.9
    return accuracy


FAULTS = [fault for fault in sabotage.CLI_FAULTS if fault.expected is not None]


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_cli_fault_is_found_and_the_printed_remedy_repairs_it(fault, tmp_path, healthy):
    diagnoses, accuracy = train(fault, tmp_path / "broken")
    found = {d.key: d for d in diagnoses}
    assert fault.expected in found, f"{fault.name}: doctor said {list(found)}"
    assert accuracy is None or accuracy < healthy - 0.05  # the fault really hurts
    remedy = found[fault.expected].overrides
    assert remedy, f"{fault.name}: no overrides printed"
    if fault.repairable:
        repaired, after = train(fault, tmp_path / "repaired", remedy)
        assert fault.expected not in {d.key for d in repaired}, (remedy, repaired)
        assert after is not None and after > healthy - 0.05, (remedy, after)
