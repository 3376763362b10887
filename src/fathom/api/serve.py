"""``fathom.serve``: an HTTP server for a run or an exported ONNX file (see fathom.serving)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def serve(
    target: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str | None = None,
    workers: int = 1,
    **settings: Any,
) -> None:
    """Serve ``target`` (a run folder or MODEL.onnx) until interrupted.

    ``backend``: "torch" (runs only) or "onnxruntime" (default for .onnx files). ``settings``
    are ``fathom.serving.ServerSettings`` fields: ``max_batch``, ``max_wait_ms``,
    ``timeout_seconds``, ``max_body_bytes``, ``max_examples``, ``max_image_side``,
    ``max_text_chars``, ``top_k``.
    """
    from fathom.serving import ServerSettings, run_server

    run_server(
        str(target), ServerSettings(**settings), host=host, port=port, backend=backend,
        workers=workers,
    )  # fmt: skip
