"""Interrupted forecasting and seq2seq runs resume to bitwise-equal weights (seeded, deterministic data)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import fathom
from fathom.api import resume
from tests_support import InterruptAt

CASES = {
    "sunspots": ["train.epochs=2", "data.batch_size=64", "model.hidden_size=16", "task.baselines=false"],
    "dates": ["train.epochs=2", "data.size=256", "data.val_size=32", "data.test_size=32",
              "data.batch_size=64", "model.hidden_size=16", "model.dropout=0.2"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("dataset", CASES)
def test_an_interrupted_run_resumes_exactly(dataset: str, tmp_path) -> None:
    overrides = [*CASES[dataset], "train.checkpoint_every_steps=2", f"run.dir={tmp_path}",
                 "run.progress=none", "run.report=false"]  # fmt: skip
    whole = fathom.fit(data=dataset, overrides=[*overrides, "run.name=whole"])
    with pytest.raises(KeyboardInterrupt):
        fathom.fit(data=dataset, overrides=[*overrides, "run.name=cut"], callbacks=[InterruptAt(5)])
    resumed = resume(tmp_path / "cut", progress="none")
    expected = load_file(str(whole.path / "model.safetensors"))
    for name, tensor in load_file(str(resumed.path / "model.safetensors")).items():
        assert torch.equal(tensor, expected[name]), name
