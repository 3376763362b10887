"""Serving: an HTTP server (FastAPI + uvicorn) for a run or an exported ONNX file.

``create_app(load_served_model("runs/NAME"))`` is the app; ``run_server`` runs it with uvicorn.
POST /predict (JSON arrays, base64 or multipart images, texts), GET /healthz, /readyz,
/metrics (Prometheus), /info, /openapi.json and a page at / to try the model. Requests are
micro-batched (``max_batch``, ``max_wait_ms``); bad input gets one 4xx line, never a 5xx.
"""

from fathom.serving.app import ServerSettings, create_app
from fathom.serving.model import BACKENDS, ServedModel, load_served_model
from fathom.serving.server import BackgroundServer, free_port, run_server

__all__ = [
    "BACKENDS",
    "BackgroundServer",
    "ServedModel",
    "ServerSettings",
    "create_app",
    "free_port",
    "load_served_model",
    "run_server",
]
