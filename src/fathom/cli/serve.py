"""``fathom serve RUN|MODEL.onnx``: an HTTP server for the model, on 127.0.0.1 by default."""

from __future__ import annotations

import argparse

from fathom.cli.options import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="RUN|MODEL.onnx")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--backend", help="torch (default for runs) or onnxruntime (default for .onnx files)"
    )
    parser.add_argument("--max-batch", type=int, default=32, help="examples per model call")
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=0.0,
        help="extra wait after a batch's first request (0: a batch is what queued meanwhile)",
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a request may wait")
    parser.add_argument("--max-body-mb", type=float, default=8.0, help="largest request body")
    parser.add_argument("--max-examples", type=int, default=64, help="examples per request")
    parser.add_argument("--top-k", type=int, default=5, help="classes returned per example")


def run(args: argparse.Namespace) -> int:
    from fathom.api.serve import serve

    serve(
        args.target, host=args.host, port=args.port, backend=args.backend, workers=args.workers,
        max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, timeout_seconds=args.timeout,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024), max_examples=args.max_examples,
        top_k=args.top_k,
    )  # fmt: skip
    return 0


COMMAND = Command("serve a run or an ONNX file over HTTP (FastAPI + uvicorn)", add_arguments, run)
