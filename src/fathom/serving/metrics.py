"""Prometheus metrics (prometheus_client, one registry per app) and the ASGI middleware that
counts every response by status, times it and turns a request that dies unanswered into a
logged 500 (the only 5xx a client may see besides 503 when the server is busy or stopping)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class ServerMetrics:
    """Request counts by path and status, a latency histogram, and model batch sizes."""

    def __init__(self, max_batch: int) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fathom_requests", "HTTP requests by path and status", ["path", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "fathom_request_seconds", "HTTP request latency", ["path"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        buckets = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, max_batch})
        self.batch_size = Histogram(
            "fathom_batch_size", "examples per model call", buckets=buckets, registry=self.registry
        )

    def text(self) -> bytes:
        return generate_latest(self.registry)


KNOWN_PATHS = (
    "/",
    "/predict",
    "/healthz",
    "/readyz",
    "/metrics",
    "/info",
    "/openapi.json",
    "/docs",
)


class MetricsMiddleware:
    """Pure ASGI middleware: status and latency of every HTTP response."""

    def __init__(self, app: Any, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        label = path if path in KNOWN_PATHS else "other"  # bounded label values
        status = {"code": 500}
        started = time.perf_counter()

        async def send_and_record(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.requests.labels(label, str(status["code"])).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)
