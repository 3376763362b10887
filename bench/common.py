"""What every benchmark in bench/ shares: paths, the machine record, a load meter, MNIST and the
hand-written training loop (one loop body for every hand-written baseline, so they stay alike)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import fathom
from fathom.data.bundle import DataBundle, Split
from fathom.engine.features import reuse_freed_cpu_memory

HERE = Path(__file__).resolve().parent
# ../shared/datasets beside the checkout; FATHOM_BENCH_DATA points elsewhere (the GPU machine).
DATA_DIR = Path(os.environ.get("FATHOM_BENCH_DATA", HERE.parent.parent / "shared" / "datasets"))
MEMORY_NOTE = (
    "Fathom's trainer sets glibc's mallopt (train.reuse_cpu_memory, default true) so large freed "
    "CPU buffers stay in the heap for reuse. It is process-wide: the bench sets it once at start, "
    "so every variant here, the hand-written loops and peers included, runs with it alike."
)


# ------------------------------------------------------------------ machine and load
def machine_info() -> dict[str, Any]:
    """CPU model, cores, threads and versions: the fields every bench result carries."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "fathom": fathom.__version__,
        "platform": platform.platform(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average": load_average(),
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _busy_jiffies() -> tuple[int, int] | None:
    try:
        first_line = Path("/proc/stat").read_text().split("\n", 1)[0]
        fields = [int(value) for value in first_line.split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle, sum(fields[:8])


class LoadMeter:
    """How busy the machine was between ``start`` and ``stop``, as shares of all its cores.

    ``others``: CPU time of other processes (what /proc/stat shows of them); ``own``: this
    process's CPU time. A low ``own`` with low ``others`` means CPU time taken outside this
    machine's view (a busy host); either way the timing was disturbed.
    """

    def start(self) -> None:
        self.jiffies, self.own = _busy_jiffies(), sum(os.times()[:2])
        self.wall = time.perf_counter()

    def stop(self) -> dict[str, float | None]:
        now, own, wall = _busy_jiffies(), sum(os.times()[:2]), time.perf_counter()
        capacity = (wall - self.wall) * (os.cpu_count() or 1)
        shares: dict[str, float | None] = {"own": round((own - self.own) / capacity, 3)}
        shares["others"] = None
        if now is not None and self.jiffies is not None and now[1] > self.jiffies[1]:
            tick = os.sysconf("SC_CLK_TCK")
            busy = (now[0] - self.jiffies[0]) / tick - (own - self.own)
            shares["others"] = round(max(0.0, busy / ((now[1] - self.jiffies[1]) / tick)), 3)
        return shares


# ------------------------------------------------------------------ a run's start and end
def start_run(threads: int) -> dict[str, Any]:
    """Set the thread count and the process-wide allocator setting; print and return the machine."""
    torch.set_num_threads(threads)
    reuse_freed_cpu_memory()  # what Fathom's trainer does; set here so every variant shares it
    machine = machine_info()
    print(
        f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
        f"({threads} threads), load {machine['load_average']}",
        flush=True,
    )
    return machine


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as JSON with the load average at the end of the run."""
    record = {**record, "load_average_after": load_average()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {path}")


def add_common_arguments(parser: argparse.ArgumentParser, output: str) -> None:
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--output", type=Path, default=HERE / "results" / output)


# ------------------------------------------------------------------ data and the plain loop
def load_mnist(limit: int | None = None) -> DataBundle:
    """MNIST's 60,000 training images and the test set, normalised; ``limit`` keeps a subset."""
    return fathom.data.load(
        "mnist", data_dir=DATA_DIR, val_fraction=0.0, limit=limit, download=False
    )


def shuffled_slices(
    split: Split, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffle the tensors once, then yield consecutive slices: the hand-written way to batch."""
    order = torch.randperm(len(split), generator=generator)
    inputs, targets = split.inputs[order], split.targets[order]
    for start in range(0, len(split), batch_size):
        yield inputs[start : start + batch_size], targets[start : start + batch_size]


def plain_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    after_step: Callable[[int], None] | None = None,
) -> None:
    """The hand-written loop body: forward, cross-entropy, backward, step, for ``steps`` batches;
    ``after_step(i)`` (a schedule, a probe) runs after optimizer step ``i`` (1-based)."""
    model.train()
    for step, (inputs, targets) in zip(range(1, steps + 1), batches, strict=False):
        loss = F.cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step(step)
