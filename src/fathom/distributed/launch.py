"""``fathom train ... --nproc N``: start ``torchrun`` (``torch.distributed.run``) on ``fathom``.

torchrun is the launcher PyTorch ships: it sets RANK/WORLD_SIZE/LOCAL_RANK, restarts nothing
unless asked, and does the rendezvous for several nodes (``--nnodes``, ``--node-rank``, and a
``host:port`` endpoint on the first node)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from fathom.errors import ConfigError


def torchrun_command(
    arguments: list[str],
    nproc: int,
    nnodes: int = 1,
    node_rank: int = 0,
    endpoint: str | None = None,
) -> list[str]:
    """The command line that runs ``fathom ARGUMENTS`` in ``nproc`` processes per node."""
    if nproc < 1 or nnodes < 1 or not 0 <= node_rank < nnodes:
        raise ConfigError(
            f"--nproc {nproc}, --nnodes {nnodes}, --node-rank {node_rank}: need nproc >= 1, "
            "nnodes >= 1 and 0 <= node-rank < nnodes"
        )
    if nnodes > 1 and not endpoint:
        raise ConfigError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the first node's)")
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes > 1:
        command += [f"--nnodes={nnodes}", f"--node-rank={node_rank}"]
        command += [f"--master-addr={endpoint.rsplit(':', 1)[0]}"]  # type: ignore[union-attr]
        command += [f"--master-port={endpoint.rsplit(':', 1)[1]}"]  # type: ignore[union-attr]
    else:
        command += ["--standalone"]  # a free local port, no endpoint to choose
    return [*command, "-m", "fathom", *arguments]


def launch(
    arguments: list[str],
    nproc: int,
    nnodes: int = 1,
    node_rank: int = 0,
    endpoint: str | None = None,
) -> int:
    """Run ``fathom ARGUMENTS`` under torchrun and return its exit status (2 stays 2)."""
    if "LOCAL_RANK" in os.environ:
        raise ConfigError("--nproc given inside a torchrun process: drop --nproc under torchrun")
    command = torchrun_command(arguments, nproc, nnodes, node_rank, endpoint)
    environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    user_error = forward_errors(process.stderr)  # type: ignore[arg-type]
    status = process.wait()
    return 2 if user_error else status


USER_ERROR = re.compile(r"^fathom [\w-]+: error: ")


def forward_errors(stream: object) -> bool:
    """Copy the workers' stderr through; after a worker's one-line user error (printed once,
    though every rank reports it), drop torchrun's failure report. True if there was one."""
    seen: str | None = None
    for line in stream:  # type: ignore[attr-defined]
        if seen is None and USER_ERROR.match(line):
            seen = line
            sys.stderr.write(line)
        elif seen is None:
            sys.stderr.write(line)
    sys.stderr.flush()
    return seen is not None
