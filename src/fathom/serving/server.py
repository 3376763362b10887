"""Running the app with uvicorn: one process, N worker processes, or a background thread.

Graceful shutdown is uvicorn's: on SIGINT/SIGTERM it stops accepting connections, lets requests
in flight finish (up to ``graceful_seconds``), then runs the app's lifespan end, where the
batcher answers whatever is still queued before it stops.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict
from typing import Any

import uvicorn

from fathom.errors import ConfigError
from fathom.serving.app import ServerSettings, create_app
from fathom.serving.model import load_served_model

ENVIRONMENT_KEY = "FATHOM_SERVE"


def uvicorn_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level=options.pop("log_level", "warning"),
        timeout_graceful_shutdown=options.pop("graceful_seconds", 10), access_log=False,
        limit_concurrency=options.pop("limit_concurrency", 1000), **options,
    )  # fmt: skip


def run_server(
    target: str,
    settings: ServerSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str | None = None,
    workers: int = 1,
) -> None:
    """Serve until interrupted. ``workers`` > 1: that many processes share the port, each with
    its own model and an equal share of the CPU threads."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, not {port}")
    model = load_served_model(target, backend)  # fail fast, in one line, before forking
    print(
        f"serving {model.run_name} ({model.backend}) on http://{host}:{port}  sha256 {model.sha256[:16]}"
    )
    if workers == 1:
        uvicorn.Server(uvicorn_config(create_app(model, settings), host, port)).run()
        return
    os.environ[ENVIRONMENT_KEY] = json.dumps(
        {"target": target, "backend": backend, "settings": asdict(settings), "workers": workers}
    )
    uvicorn.run(
        "fathom.serving.server:app_from_environment", host=host, port=port, factory=True,
        workers=workers, log_level="warning", timeout_graceful_shutdown=10, access_log=False,
    )  # fmt: skip


def app_from_environment() -> Any:
    """The app a worker process builds (``--workers N``), from what ``run_server`` put in the
    environment."""
    import torch

    request = json.loads(os.environ[ENVIRONMENT_KEY])
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(request["workers"])))
    model = load_served_model(request["target"], request["backend"])
    return create_app(model, ServerSettings(**request["settings"]))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class BackgroundServer:
    """A real uvicorn server on a loopback port in a thread (tests, benchmarks, notebooks)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None, **options: Any):
        self.host, self.port = host, port or free_port(host)
        self.server = uvicorn.Server(uvicorn_config(app, self.host, self.port, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
