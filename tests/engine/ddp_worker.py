"""Run under ``torchrun`` by tests/engine/test_distributed.py: a short fit, then each rank saves
its final parameters (``rank<N>.pt``; under FSDP rank 0's are the gathered module's, the other
ranks' their shards)."""

import sys
from pathlib import Path

import torch

import fathom

OVERRIDES = [
    "model.name=mlp", "train.max_steps=4", "train.epochs=1", "train.diagnostics=false",
    "data.batch_size=64", "optim.name=sgd", "optim.lr=0.1", "train.device=cpu", "run.progress=none",
    "run.report=false",  # one test turns it on: rank 0 alone writes it, like every file
]  # fmt: skip


def main(out: Path, extra: list[str]) -> None:
    overrides = [*OVERRIDES, f"run.dir={out / 'runs'}", *extra]
    run = fathom.fit(data="digits", overrides=overrides)
    rank = torch.distributed.get_rank()
    state = {name: value.detach().clone() for name, value in run.model.state_dict().items()}
    torch.save(state, out / f"rank{rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
