"""The execution seam: sharding, two-process gloo DDP against one process, only rank 0 writes,
the torchrun launcher and its one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import fathom
from fathom.cli.main import main
from fathom.data.bundle import DataBundle, Split
from fathom.data.loader import TensorLoader
from fathom.distributed import torchrun_command
from fathom.distributed.launch import forward_errors
from fathom.engine.checkpoint_files import load_checkpoint
from fathom.engine.distributed import Execution, ShardedLoader, check_shardable
from fathom.errors import ConfigError
from tests_support import trainer_for

WORKER = Path(__file__).with_name("ddp_worker.py")
SOURCE = Path(__file__).resolve().parents[2] / "src"


def loader(count: int, batch_size: int) -> TensorLoader:
    split = Split(torch.arange(count).float().unsqueeze(1), torch.arange(count))
    return TensorLoader(split, batch_size, shuffle=True, seed=3)


@pytest.mark.parametrize(("count", "batch_size", "world"), [(23, 8, 2), (20, 6, 3), (9, 4, 3)])
def test_shards_are_disjoint_complete_and_follow_the_global_batches(
    count: int, batch_size: int, world: int
) -> None:
    shards = [ShardedLoader(loader(count, batch_size), rank, world) for rank in range(world)]
    per_rank = [[(targets, shard.shard_weight) for _, targets in shard] for shard in shards]
    one_process = [targets for _, targets in loader(count, batch_size)]
    assert all(len(batches) == len(one_process) for batches in per_rank)
    for step, whole in enumerate(one_process):  # the ranks' weighted parts make each batch
        parts = [batches[step][0] for batches in per_rank if batches[step][1] > 0]
        assert torch.equal(torch.cat(parts), whole)
    seen = torch.cat([targets for batches in per_rank for targets, weight in batches if weight])
    # disjoint and complete: as on one process (which drops a last batch of a single example)
    assert len(set(seen.tolist())) == len(seen) == len(torch.cat(one_process))
    assert len(seen) == (count if count % batch_size != 1 else count - 1)


def test_a_rank_left_without_examples_trains_with_weight_zero() -> None:
    shard = ShardedLoader(loader(9, 4), rank=0, world_size=3)
    inputs, targets = shard.slice(torch.zeros(2, 1), torch.zeros(2))
    assert len(inputs) == 1 and shard.shard_weight == 0.0
    shard.slice(torch.zeros(4, 1), torch.zeros(4))
    assert shard.shard_weight == pytest.approx(3 * 1 / 4)


def test_uneven_weights_average_to_the_global_mean() -> None:
    world, total = 3, 7
    shards = [ShardedLoader(loader(21, 7), rank, world) for rank in range(world)]
    values = torch.arange(total).float()
    weighted = 0.0
    for shard in shards:
        part, _ = shard.slice(values, values)
        weighted += shard.shard_weight * float(part.mean()) / world
    assert weighted == pytest.approx(float(values.mean()))


def test_more_processes_than_examples_is_refused() -> None:
    with pytest.raises(ConfigError, match="3 processes but only 2"):
        check_shardable(2, 2, 3)
    with pytest.raises(ConfigError, match="global batch"):
        check_shardable(100, 1, 2)


def test_one_process_is_the_plain_loop() -> None:
    execution = Execution()
    model = torch.nn.Linear(2, 2)
    base = loader(4, 2)
    assert execution.wrap(model, torch.device("cpu")) is model
    assert execution.shard(base) is base and execution.is_main
    values = {"loss": torch.tensor(2.0)}
    assert execution.mean(values) is values


class RankZeroSaid(Execution):
    """One process standing in for a rank whose rank 0 broadcasts ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def broadcast(self, value: object) -> float:
        return self.value


@pytest.mark.parametrize(("rank_0_seconds", "budget", "epochs"), [(1e9, 100.0, 0), (0.0, 1e-9, 2)])
def test_the_time_budget_is_spent_by_rank_0s_clock_on_every_rank(
    blobs: DataBundle, rank_0_seconds: float, budget: float, epochs: int
) -> None:
    trainer = trainer_for(blobs, epochs=2, max_seconds=budget)
    trainer.execution = RankZeroSaid(rank_0_seconds)  # this rank's own clock says the opposite
    assert trainer.fit().step == epochs * len(trainer.train_loader)


def test_torchrun_command_single_and_multi_node() -> None:
    local = torchrun_command(["train"], 2)
    assert local[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=2"]
    assert "--standalone" in local and local[-3:] == ["-m", "fathom", "train"]
    multi = torchrun_command(["train"], 1, nnodes=2, node_rank=1, endpoint="127.0.0.1:29511")
    assert "--nnodes=2" in multi and "--master-port=29511" in multi
    with pytest.raises(ConfigError, match="rdzv-endpoint"):
        torchrun_command(["train"], 1, nnodes=2)


def torchrun(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {"PYTHONPATH": str(SOURCE), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return subprocess.run(
        [*command, "--nproc-per-node=2", *arguments],
        cwd=cwd, env=environment, capture_output=True, text=True, check=False,
        timeout=900,  # only stops a hang: these runs take seconds
    )  # fmt: skip


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_and_only_rank_0_writes(tmp_path: Path) -> None:
    result = torchrun([str(WORKER), str(tmp_path), "run.report=true"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    for name, value in ranks[0].items():
        assert torch.equal(value, ranks[1][name]), name  # identical across ranks
    (run_dir,) = (tmp_path / "runs").iterdir()  # one run folder, written by rank 0
    assert (run_dir / "report.html").is_file() and (run_dir / "plots" / "loss.png").is_file()
    sys.path.insert(0, str(WORKER.parent))
    from ddp_worker import OVERRIDES

    single = fathom.fit(data="digits", overrides=[*OVERRIDES, f"run.dir={tmp_path / 'one'}"])
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-4, atol=1e-5)
    metrics = (next((tmp_path / "runs").iterdir()) / "metrics.jsonl").read_text().splitlines()
    assert metrics, "rank 0 logs the reduced metrics"


def free_port() -> int:
    """A free loopback port below the ephemeral range. A port the kernel handed out (bind to 0)
    is an ephemeral one, and node 1, retrying connections to node 0's store before it listens,
    can get that same number as its own source port: the socket then connects to itself (TCP
    simultaneous open) and the rendezvous fails, leaving node 0 waiting (seen once in the suite)."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    below = range(20000, low) if low - 20000 >= 200 else range(10000, 10200)
    for port in random.Random().sample(below, 200):
        with socket.socket() as probe, contextlib.suppress(OSError):
            probe.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


@pytest.mark.slow
def test_two_nodes_on_loopback_train_as_one_process_would(tmp_path: Path) -> None:
    sys.path.insert(0, str(WORKER.parent))
    from ddp_worker import OVERRIDES

    environment = {"PYTHONPATH": str(SOURCE), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    endpoint = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "fathom", "train", "digits", "--nproc", "1", "--nnodes", "2",
               "--rdzv-endpoint", endpoint, *OVERRIDES, f"run.dir={tmp_path / 'runs'}"]  # fmt: skip
    logs = [tmp_path / f"node{rank}.log" for rank in (0, 1)]
    with contextlib.ExitStack() as files:  # stderr to files: a full pipe cannot stall a node
        nodes = [
            subprocess.Popen([*command, "--node-rank", str(rank)], cwd=tmp_path, env=environment,
                             stdout=subprocess.DEVNULL, stderr=files.enter_context(log.open("w")))
            for rank, log in zip((0, 1), logs, strict=True)
        ]  # fmt: skip
        statuses = wait_for_all(nodes)
    report = "\n".join(f"node {rank} (exit {status}): {log.read_text()[-2000:]}"
                       for rank, (status, log) in enumerate(zip(statuses, logs, strict=True)))  # fmt: skip
    assert statuses == [0, 0], report
    (run_dir,) = (tmp_path / "runs").iterdir()  # one run folder, written by node 0's rank 0
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    single = fathom.fit(data="digits", overrides=[*OVERRIDES, f"run.dir={tmp_path / 'one'}"])
    weights = fathom.load(run_dir).model.state_dict()
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.batch_size=1"], "data.batch_size=1 is the global batch and must be at least the "
         "number of processes (2)"),
        (["train.strategy=fsdp", "train.ema_decay=0.9"],
         "train.ema_decay needs train.strategy=ddp: FSDP cannot copy the model"),
        (["optim.lr=auto"], "optim.lr=auto needs one process: run 'fathom lr-find' first"),
    ],
)  # fmt: skip
def test_nproc_with_a_bad_setting_is_one_line_and_exit_2_before_any_process_starts(
    tmp_path: Path, overrides: list[str], message: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(subprocess, "Popen", None)  # torchrun must not start
    arguments = ["train", "digits", "--nproc", "2", "--model", "mlp", *overrides]
    assert main([*arguments, f"run.dir={tmp_path}"]) == 2
    assert capsys.readouterr().err == f"fathom train: error: {message}\n"
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_a_workers_error_line_is_forwarded_once_without_torchruns_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every rank prints the same one-line error; torchrun then prints its failure report."""
    error = "fathom train: error: 2 processes but only 1 training examples: use at most 1\n"
    stream = ["[W rendezvous] starting\n", error, error, "Traceback (most recent call last):\n",
              "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n"]  # fmt: skip
    assert forward_errors(io.StringIO("".join(stream)))
    assert capsys.readouterr().err == "[W rendezvous] starting\n" + error
    assert not forward_errors(io.StringIO("a warning\n"))


def last_checkpoint(run_dir: Path) -> tuple[dict[str, torch.Size], dict[str, object]]:
    """The shapes of a run's last checkpoint's tensors (RNG states aside) and its optimizers."""
    tensors, state = load_checkpoint(run_dir / "checkpoints" / "last.safetensors")
    shapes = {name: value.shape for name, value in tensors.items() if not name.startswith("rng")}
    return shapes, state["optimizers"]


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="FSDP2 over NCCL needs two GPUs")
def test_two_process_fsdp_on_gpus_saves_full_weights(tmp_path: Path) -> None:
    result = torchrun([str(WORKER), str(tmp_path), "train.strategy=fsdp", "train.device=cuda"],
                      tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    rank_0 = torch.load(tmp_path / "rank0.pt", weights_only=True)  # the gathered, plain module
    for name, value in fathom.load(run_dir).model.state_dict().items():
        assert torch.equal(value, rank_0[name].cpu()), name


def wait_for_all(processes: list[subprocess.Popen], limit: float = 900) -> list[int]:
    """Every process's exit status; once one fails (or ``limit`` passes: a hang), the others
    and their children are killed rather than left waiting for a rendezvous that never comes."""
    deadline = time.monotonic() + limit
    while any(process.poll() is None for process in processes):
        failed = any(process.returncode not in (None, 0) for process in processes)
        if failed or time.monotonic() > deadline:
            for process in processes:
                if process.poll() is None:
                    kill_9_everything(process)
            break
        time.sleep(0.1)
    return [process.wait() for process in processes]


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, their children, and so on (read from /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended while we looked
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    family = parents.get(pid, [])
    for child in family:
        family += parents.get(child, [])
    return family


def kill_9_everything(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL torchrun and all its workers at once, as a crash would. torchrun starts each
    worker in a session of its own, so killing torchrun's process group alone leaves them
    training, and writing the checkpoints that the resumed run then reads."""
    for pid in [process.pid, *descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


def checkpoint_step(runs: Path) -> int:
    """The step of the run's last checkpoint (0 before the first one)."""
    files = list(runs.glob("*/checkpoints/last.safetensors"))
    return load_checkpoint(files[0])[1]["train_state"]["step"] if files else 0


KILL_RUN = [
    "model.name=mlp", "train.epochs=8", "train.checkpoint_every_steps=5", "train.diagnostics=false",
    "data.batch_size=64", "optim.name=sgd", "optim.lr=0.1", "train.device=cpu", "run.progress=none",
    "run.report=false",
]  # fmt: skip


def train_then_kill_9(tmp_path: Path, overrides: list[str], kill_after_step: int) -> Path:
    """The run folder of a two-process ``fathom train digits`` killed with SIGKILL (torchrun and
    its workers) once its last checkpoint is at ``kill_after_step`` or later."""
    environment = {"PYTHONPATH": str(SOURCE), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    process = subprocess.Popen(
        [*launcher, "-m", "fathom", "train", "digits", *overrides, f"run.dir={tmp_path / 'runs'}"],
        cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while process.poll() is None and checkpoint_step(tmp_path / "runs") < kill_after_step:
            time.sleep(0.02)
    finally:  # also when the wait fails: no worker may outlive the test
        kill_9_everything(process)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"  # killed mid-run
    return run_dir


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory: pytest.TempPathFactory) -> fathom.Run:
    """The uninterrupted one-process run that a killed and resumed DDP run must end as, on one
    thread as each worker (two threads on a loaded two-core machine are ten times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fathom.fit(
            data="digits", overrides=[*KILL_RUN, f"run.dir={tmp_path_factory.mktemp('one')}"]
        )
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds torchrun's workers in /proc"
)
def test_kill_9_of_a_two_process_run_then_resume_ends_as_one_process_would(
    tmp_path: Path, one_process_run: fathom.Run
) -> None:
    kill_after_step = 60  # mid-epoch (18 steps an epoch), after 2 evaluations
    run_dir = train_then_kill_9(tmp_path, KILL_RUN, kill_after_step)
    resumed = torchrun(["-m", "fathom", "resume", str(run_dir)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.loads((run_dir / "run.json").read_text())
    single_record = json.loads((one_process_run.path / "run.json").read_text())
    assert record["status"] == "completed" and record["epochs_completed"] == 8
    assert record["resumed_from_step"] >= kill_after_step
    assert record["steps"] == single_record["steps"]
    weights = fathom.load(run_dir).model.state_dict()
    for name, value in one_process_run.model.state_dict().items():
        torch.testing.assert_close(weights[name], value, rtol=1e-3, atol=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds torchrun's workers in /proc"
)
def test_kill_9_of_a_two_process_fsdp_run_then_resume_ends_as_uninterrupted(
    tmp_path: Path, one_process_run: fathom.Run
) -> None:
    """An uninterrupted FSDP run writes the run folder one process would (gathered weights, the
    full checkpoint numbered as on one process); a killed and resumed one ends bit for bit as it."""
    overrides = [*KILL_RUN, "train.strategy=fsdp"]
    whole = torchrun(["-m", "fathom", "train", "digits", *overrides, f"run.dir={tmp_path / 'whole'}"],
                     tmp_path)  # fmt: skip
    assert whole.returncode == 0, whole.stderr[-3000:]
    (whole_dir,) = (tmp_path / "whole").iterdir()  # one folder, written by rank 0
    sharded = fathom.load(whole_dir)
    assert 0.0 <= sharded.evaluate()["accuracy"] <= 1.0
    gathered = sharded.model.state_dict()
    for name, value in one_process_run.model.state_dict().items():
        assert gathered[name].shape == value.shape, name  # gathered, not rank 0's shard
        torch.testing.assert_close(gathered[name], value, rtol=1e-3, atol=1e-4)
    assert last_checkpoint(whole_dir) == last_checkpoint(one_process_run.path)
    run_dir = train_then_kill_9(tmp_path, overrides, kill_after_step=60)  # after 2 evaluations
    resumed = torchrun(["-m", "fathom", "resume", str(run_dir)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["resumed_from_step"] >= 60
    # the same processes, shards and sums: the resumed run ends bit for bit as the whole one
    finals = [
        load_checkpoint(run / "checkpoints" / "last.safetensors")[0] for run in (run_dir, whole_dir)
    ]
    for name, value in finals[1].items():
        if name.startswith(("model/", "optimizer/")):  # full weights and momentum buffers
            assert torch.equal(finals[0][name], value), name
    weights = fathom.load(run_dir).model.state_dict()
    for name, value in fathom.load(whole_dir).model.state_dict().items():
        assert torch.equal(weights[name], value), name
