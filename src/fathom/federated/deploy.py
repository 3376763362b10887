"""Starting a Flower deployment: the Flower App that ``flwr run`` submits, its SuperLink
connection, and (for ``--flower local`` and the tests) a SuperLink with one SuperNode per client
on 127.0.0.1, each a separate process.

The Flower App is only a ``pyproject.toml`` naming ``fathom.federated.flower:server_app`` and
``client_app`` (Fathom is installed where the SuperLink and SuperNodes run) and the run folder's
path; runtime dependency installation (``uv sync``) is disabled: the environment already has it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import tomli_w

from fathom.errors import FathomError

APP_COMPONENTS = {"serverapp": "fathom.federated.flower:server_app",
                  "clientapp": "fathom.federated.flower:client_app"}  # fmt: skip


def flower_command(name: str) -> str:
    """A Flower console script of this interpreter's environment (or the one on PATH)."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def flower_environment(home: Path | None = None) -> dict[str, str]:
    """This environment with its scripts first on PATH: the SuperLink and SuperNodes start
    ``flower-superexec``, ``flwr-serverapp`` and ``flwr-clientapp`` by name."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, **({"FLWR_HOME": str(home)} if home is not None else {})}


def write_app(
    app_dir: Path, run_dir: Path, connect_timeout: float = 600, reply_timeout: float = 3600
) -> Path:
    """The Flower App that ``flwr run`` builds and submits: Fathom's components, the run folder,
    and how long the server waits for the SuperNodes to connect and for a round's replies."""
    app_dir.mkdir(parents=True, exist_ok=True)
    project = {
        "project": {"name": "fathom-federated", "version": "1.0.0", "license": "Apache-2.0",
                    "description": "Fathom federated run", "dependencies": []},
        "tool": {"flwr": {"app": {
            "publisher": "fathom", "components": APP_COMPONENTS,
            "config": {"run-dir": str(run_dir.resolve()), "connect-timeout": connect_timeout,
                       "reply-timeout": reply_timeout},
        }}},
    }  # fmt: skip
    (app_dir / "pyproject.toml").write_text(tomli_w.dumps(project), encoding="utf-8")
    return app_dir


def write_connection(home: Path, address: str) -> Path:
    """A Flower config (``FLWR_HOME``) whose default connection is an insecure SuperLink."""
    home.mkdir(parents=True, exist_ok=True)
    config = {"superlink": {"default": "fathom", "fathom": {"address": address, "insecure": True}}}
    (home / "config.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
    return home


def submit(app_dir: Path, connection: str | None, home: Path | None, log: Path) -> None:
    """``flwr run APP [CONNECTION] --stream``: submit the run and wait until it ends."""
    environment = flower_environment(home)
    command = [flower_command("flwr"), "run", str(app_dir), *([connection] if connection else []),
               "--stream"]  # fmt: skip
    with log.open("a", encoding="utf-8") as output:
        status = subprocess.run(command, env=environment, stdout=output, stderr=subprocess.STDOUT,
                                check=False).returncode  # fmt: skip
    if status != 0:
        raise FathomError(f"flwr run failed (exit {status}); see {log}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, limit: float) -> None:
    """Until something listens on 127.0.0.1:port (a generous limit: a hung start, not speed)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FathomError(f"a Flower process exited (status {process.returncode}); see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise FathomError(f"nothing listened on 127.0.0.1:{port} after {limit:.0f} s; see {log}")


@contextlib.contextmanager
def local_federation(
    clients: int, log_dir: Path, home: Path, start_limit: float = 300
) -> Iterator[str]:
    """A SuperLink and ``clients`` SuperNodes (``partition-id`` 0..clients-1) on 127.0.0.1, in
    insecure mode on free ports, with ``home`` as their ``FLWR_HOME`` (installed apps); yields
    the Control API address; every process (and its children) ends after."""
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("serverappio", "fleet", "control")}
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=log_dir,
                                   env=flower_environment(home), start_new_session=True)  # fmt: skip
        processes.append(process)
        return process

    try:
        link = start("superlink", [
            flower_command("flower-superlink"), "--insecure", "--disable-runtime-dependency-installation",
            "--serverappio-api-address", f"127.0.0.1:{ports['serverappio']}",
            "--fleet-api-address", f"127.0.0.1:{ports['fleet']}",
            "--control-api-address", f"127.0.0.1:{ports['control']}",
        ])  # fmt: skip
        wait_for_port(ports["control"], link, log_dir / "superlink.log", start_limit)
        wait_for_port(ports["fleet"], link, log_dir / "superlink.log", start_limit)
        for client in range(clients):
            start(f"supernode-{client}", [
                flower_command("flower-supernode"), "--insecure",
                "--superlink", f"127.0.0.1:{ports['fleet']}",
                "--clientappio-api-address", f"127.0.0.1:{free_port()}",
                "--node-config", f"partition-id={client} num-partitions={clients}",
            ])  # fmt: skip
        yield f"127.0.0.1:{ports['control']}"
    finally:
        stop(processes)


def stop(processes: list[subprocess.Popen[bytes]], grace_seconds: float = 10) -> None:
    """Terminate each started process group (its ServerApp/ClientApp children too), then kill
    what is still running after ``grace_seconds`` in all (the run is over: nothing is lost). It
    was 30 s per process; the loopback test once took 64 s instead of 35, about one such wait."""
    for process in reversed(processes):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait()


def run_deployment(run_dir: Path, clients: int, target: str) -> None:
    """Train the prepared run folder with Flower: ``target`` is ``local`` (a SuperLink and one
    SuperNode per client started here), ``HOST:PORT`` (a SuperLink's Control API, insecure) or
    the name of a SuperLink connection in the user's Flower config (``~/.flwr/config.toml``)."""
    flower_dir = run_dir / "flower"
    app_dir = write_app(flower_dir / "app", run_dir)
    log = flower_dir / "flwr-run.log"
    if target == "local":
        home = flower_dir / "home"
        with local_federation(clients, flower_dir / "logs", home) as address:
            submit(app_dir, None, write_connection(home, address), log)
    elif ":" in target:
        submit(app_dir, None, write_connection(flower_dir / "home", target), log)
    else:
        submit(app_dir, target, None, log)
