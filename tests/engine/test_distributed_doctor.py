"""The doctor under FSDP: both ranks sample the same steps, so no rank waits for another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_distributed import WORKER, torchrun


@pytest.mark.slow
def test_an_fsdp_run_with_diagnostics_samples_the_same_fixed_steps_on_every_rank(
    tmp_path: Path,
) -> None:
    """Under FSDP a sample's gradient norms are collectives: the doctor samples fixed steps
    (its time budget differs by rank and would leave one rank waiting for the other)."""
    extra = ["train.strategy=fsdp", "train.diagnostics=true", "train.epochs=2",
             "train.max_steps=40"]  # fmt: skip
    result = torchrun([str(WORKER), str(tmp_path), *extra], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    lines = (run_dir / "diagnostics.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines if '"kind": "sample"' in line]
    steps = [sample["step"] for sample in samples]  # every max(10, 40 planned / 10) steps
    assert len(steps) >= 3 and all(b - a == 10 for a, b in zip(steps, steps[1:], strict=False))
    for sample in samples:  # the sharded gradients and weights were gathered whole
        layers = sample["layers"].values()
        assert layers and all(layer.get("grad_norm") for layer in layers if "update_ratio" in layer)
    examples = [json.loads(line) for line in lines if '"kind": "examples"' in line]
    assert all(record["held_out"] is None for record in examples)  # one forward call per rank
