"""The FastAPI application: /predict, /healthz, /readyz, /metrics, /info, the page at / and
the OpenAPI schema (/openapi.json, /docs). Bad input gets one 4xx line, never a 5xx."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from fathom.errors import ConfigError
from fathom.serving.batcher import MicroBatcher, Overloaded
from fathom.serving.inputs import Limits, RequestError, read_images, read_json_request
from fathom.serving.metrics import MetricsMiddleware, ServerMetrics
from fathom.serving.model import ServedModel
from fathom.serving.page import page_html

try:
    import orjson
except ImportError:  # not installed: the standard library parses (slower, same answers)
    orjson = None  # type: ignore[assignment]

# python-multipart logs every malformed part it skips; a 4xx answer already says it, once
logging.getLogger("python_multipart").setLevel(logging.ERROR)


@dataclass(frozen=True)
class ServerSettings:
    """Batching, limits and timeouts of a server (each also a ``fathom serve`` option)."""

    max_batch: int = 32
    max_wait_ms: float = 0.0
    timeout_seconds: float = 10.0
    max_body_bytes: int = 8 * 1024 * 1024
    max_examples: int = 64
    max_image_side: int = 4096
    max_text_chars: int = 10_000
    max_queued: int = 4096
    top_k: int = 5

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            low = 0 if name in ("max_wait_ms", "timeout_seconds") else 1
            wrong = not isinstance(value, (int, float)) or isinstance(value, bool)
            if wrong or value < low or (name == "timeout_seconds" and value == 0):
                raise ConfigError(f"serve: {name} must be a number >= {low}, not {value!r}")

    @property
    def limits(self) -> Limits:
        return Limits(self.max_examples, self.max_image_side, self.max_text_chars)


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "inputs": {"type": "array", "description": "one example or a batch of them"},
                "dtype": {"type": "string", "enum": ["float32", "uint8", "int64"]},
                "images": {"type": "array", "items": {"type": "string", "format": "byte"}},
                "texts": {"type": "array", "items": {"type": "string"}},
                "top_k": {"type": "integer", "minimum": 1},
            }}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
            }}},
        },
    }
}  # fmt: skip


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(model: ServedModel, settings: ServerSettings | None = None) -> FastAPI:
    """An app serving ``model``; its batcher starts and drains with the app's lifespan."""
    settings = settings or ServerSettings()
    metrics = ServerMetrics(settings.max_batch)
    state: dict[str, Any] = {"ready": False}

    lifespan = batching_lifespan(model, settings, metrics, state)
    app = FastAPI(title=f"Fathom: {model.run_name}", version="1", lifespan=lifespan)
    add_error_handlers(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html(model.describe()))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = state["ready"] and state["batcher"].running
        return JSONResponse({"ready": bool(ready)}, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics_text() -> Response:
        return Response(metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {**model.describe(), "limits": asdict(settings)}

    async def predict_answer(request: Request) -> tuple[int, dict[str, Any]]:
        try:
            inputs, top_k = await read_request(request, model, settings)
        except RequestError as fault:
            return fault.status, {"error": fault.message}
        except ClientDisconnect:
            return 400, {"error": "the client closed the connection before the body ended"}
        if not state["ready"]:
            return 503, {"error": "the server is starting or stopping"}
        try:
            outputs = await asyncio.wait_for(
                state["batcher"].submit(inputs), settings.timeout_seconds
            )
        except (asyncio.TimeoutError, Overloaded):
            busy = f"busy: no answer within {settings.timeout_seconds:g} s; retry later"
            return 503, {"error": busy}
        return 200, answer(model, outputs, top_k)

    @app.post("/predict", openapi_extra=PREDICT_BODY)
    async def predict(request: Request) -> Response:  # the schema; PredictRoute answers first
        status, payload = await predict_answer(request)
        return Response(dump_json(payload), status, media_type="application/json")

    app.add_middleware(PredictRoute, answer=predict_answer)  # inside the metrics middleware
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


class PredictRoute:
    """Pure ASGI answer to ``POST /predict``, ahead of FastAPI's router: under load the event
    loop, not the model, limits a batching server, and FastAPI's routing, endpoint wrapper and
    response classes cost more per request than reading the body. The same ``answer`` function
    backs the FastAPI route, which stays for the OpenAPI schema; other paths and methods go on
    to FastAPI (a GET /predict is its 405)."""

    def __init__(self, app: Any, answer: Any) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        status, payload = await self.answer(Request(scope, receive))
        body = dump_json(payload)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def dump_json(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (orjson where installed; the answers hold only finite floats)."""
    if orjson is not None:
        return orjson.dumps(payload)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def batching_lifespan(
    model: ServedModel, settings: ServerSettings, metrics: ServerMetrics, state: dict[str, Any]
) -> Any:
    """Start the batcher with the app; at shutdown, answer what is queued, then stop."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher = MicroBatcher(
            model.predict,
            settings.max_batch,
            settings.max_wait_ms,
            settings.max_queued,
            metrics.batch_size.observe,
        )
        batcher.start()
        state["batcher"] = batcher
        state["ready"] = True
        yield
        state["ready"] = False
        await batcher.stop()

    return lifespan


def add_error_handlers(app: FastAPI) -> None:
    """One JSON line for FastAPI's own 4xx (unknown path, wrong method, bad query)."""

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, fault: HTTPException) -> JSONResponse:
        return error(fault.status_code, str(fault.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, fault: RequestValidationError) -> JSONResponse:
        first = fault.errors()[0] if fault.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid request')}")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it (or its declared length) passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise RequestError(413, f"body of {declared[:20]} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_request(
    request: Request, model: ServedModel, settings: ServerSettings
) -> tuple[np.ndarray, int]:
    """The request's inputs as the model's batch, and how many classes to return."""
    body = await read_body(request, settings.max_body_bytes)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    top_k = request.query_params.get("top_k", str(settings.top_k))
    if kind == "multipart/form-data":
        inputs = await read_multipart(request, body, model, settings)
    elif kind in ("application/json", ""):
        payload = parse_json(body)
        inputs = read_json_request(model, payload, settings.limits)
        top_k = payload.get("top_k", top_k)
    else:
        raise RequestError(
            415, f"content type '{kind[:60]}': send application/json or multipart/form-data"
        )
    if isinstance(top_k, bool) or not str(top_k).isdigit() or int(top_k) < 1:
        raise RequestError(422, "top_k must be a whole number >= 1")
    return inputs, int(top_k)


def parse_json(body: bytes) -> Any:
    """The request's JSON: orjson where installed (the ``serve`` extra; parsing a 28x28 image's
    numbers is most of a request's cost, and orjson is several times faster), falling back to
    the standard library for what orjson refuses (NaN, UTF-16), so both give the same values
    (orjson reads integers beyond 64 bits as floats) and the same errors."""
    if orjson is not None:
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(body)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RequestError(400, "the body is not valid JSON (UTF-8)") from None


async def read_multipart(
    request: Request, body: bytes, model: ServedModel, settings: ServerSettings
) -> np.ndarray:
    """Image files from a multipart form (any field name), decoded by the run's reader."""
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if replayed:
            return {"type": "http.disconnect"}
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    limit = settings.max_examples + 1
    try:
        async with Request(request.scope, replay).form(max_files=limit, max_fields=limit) as form:
            files = [
                await value.read() for _, value in form.multi_items() if hasattr(value, "read")
            ]
    except (HTTPException, ValueError, KeyError, AssertionError):
        raise RequestError(400, "malformed multipart/form-data body") from None
    if not files:
        raise RequestError(422, "no files in the multipart form (send images as files)")
    return read_images(model, files, settings.limits)


def answer(model: ServedModel, outputs: np.ndarray, top_k: int) -> dict[str, Any]:
    """Top-k classes with probabilities (classifiers) or the values (regression)."""
    result: dict[str, Any] = {
        "run": model.run_name,
        "sha256": model.sha256,
        "backend": model.backend,
    }
    if not model.classifier:
        result["predictions"] = [{"values": row.reshape(-1).tolist()} for row in outputs]
        return result
    names = model.class_names() or []
    predictions = []
    for row in outputs:
        order = np.argsort(-row, kind="stable")[: min(top_k, len(row))]
        top = [{"class": names[i] if i < len(names) else str(i), "index": int(i),
                "probability": float(row[i])} for i in order]  # fmt: skip
        predictions.append({"top": top})
    result["predictions"] = predictions
    return result
