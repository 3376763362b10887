"""Gradient accumulation and mixed precision under both strategies: a two-process run with the
same global batch trains as one process does, within bf16's precision."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_distributed import WORKER, torchrun

import fathom

FEATURES = ["train.accumulate_steps=2", "train.precision=bf16", "train.max_steps=16"]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_accumulation_and_bf16_train_as_one_process_would(strategy: str, tmp_path: Path) -> None:
    result = torchrun([str(WORKER), str(tmp_path), f"train.strategy={strategy}", *FEATURES],
                      tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    distributed = fathom.load(run_dir)
    assert distributed.summary["status"] == "completed" and distributed.summary["steps"] == 16
    assert distributed.summary["precision"] == "bf16"

    from ddp_worker import OVERRIDES

    torch.set_num_threads(1)  # as each worker (the session's count comes back after the test)
    single = fathom.fit(data="digits", overrides=[*OVERRIDES, *FEATURES,
                                                  f"run.dir={tmp_path / 'one'}"])  # fmt: skip
    assert single.summary["steps"] == 16
    for name, value in single.model.state_dict().items():
        # bf16 forward passes on half batches round differently from one on the whole batch
        torch.testing.assert_close(
            distributed.model.state_dict()[name], value, rtol=2e-2, atol=2e-3
        )
    accuracy = distributed.summary["test"]["accuracy"]
    assert accuracy > 0.4 and abs(accuracy - single.summary["test"]["accuracy"]) < 0.02
