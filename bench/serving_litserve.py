"""`fathom serve` beside LitServe serving the same run, on loopback, interleaved rounds.

The issue asks for FastAPI with uvicorn, "or LitServe if it serves better: measure". LitServe
(built on FastAPI and uvicorn, with the model in a separate worker process fed through queues)
serves the same run here through the same request reading and answer (Fathom's
``read_json_request`` and ``answer``), with its own dynamic batching (``max_batch_size`` 32,
``batch_timeout`` 2 ms); throughput at 64 keep-alive clients (the asyncio client and ``wrk``).

    python bench/serving_litserve.py            # trains a short MNIST run (as bench/serving.py)
    python bench/serving_litserve.py --quick    # toy size
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, load_average, machine_info, write_record  # noqa: E402
from export import train_run  # noqa: E402
from fathom.serving import free_port  # noqa: E402
from serving import (  # noqa: E402
    Server,
    closed_loop,
    image_request,
    paired_speedup,
    wait_until_ready,
    wrk_rate,
)

try:
    import litserve as ls
except ImportError:  # the benchmark says so in main()
    ls = None

if ls is not None:

    class FathomAPI(ls.LitAPI):
        """The run served by LitServe with Fathom's own request reading and answers (module
        level: LitServe's worker process is spawned, so the class must pickle by name)."""

        def __init__(self, run_dir: Path, **options: Any) -> None:
            super().__init__(**options)
            self.run_dir = run_dir

        def setup(self, device: str) -> None:
            from fathom.serving.app import ServerSettings
            from fathom.serving.model import load_served_model

            self.model = load_served_model(self.run_dir)
            self.limits = ServerSettings().limits

        def decode_request(self, request) -> np.ndarray:  # noqa: ANN001 - no hint: LitServe reads
            # the hint as the request's schema (a dict hint became a required query parameter)
            from fathom.serving.inputs import read_json_request

            return read_json_request(self.model, request, self.limits)

        def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(inputs)

        def predict(self, batch: np.ndarray) -> np.ndarray:
            return self.model.predict(batch)

        def unbatch(self, outputs: np.ndarray) -> list[np.ndarray]:
            return [row[None] for row in outputs]

        def encode_response(self, outputs: np.ndarray) -> dict[str, Any]:
            from fathom.serving.app import answer

            return answer(self.model, outputs, 5)


def serve_with_litserve(run_dir: Path, port: int) -> None:
    """Run LitServe in this process (the benchmark starts it as a subprocess)."""
    api = FathomAPI(run_dir, max_batch_size=32, batch_timeout=0.002)
    ls.LitServer(api, accelerator="cpu", workers_per_device=1).run(
        host="127.0.0.1", port=port, generate_client_file=False
    )


class LitServeProcess:
    """LitServe on a free loopback port, ready when /health answers."""

    def __init__(self, run_dir: Path) -> None:
        self.port = free_port()
        command = [sys.executable, __file__, "--serve", str(run_dir), "--port", str(self.port)]
        self.process = subprocess.Popen(  # its own session: LitServe starts worker processes
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy(),
            start_new_session=True,
        )  # fmt: skip
        wait_until_ready(self.process, f"http://127.0.0.1:{self.port}/health", "LitServe")

    def stop(self) -> None:
        """SIGTERM to LitServe and its workers, then SIGKILL to whatever of them is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def measure(run_dir: Path, rounds: int, seconds: float) -> dict[str, Any]:
    body, payload = image_request(run_dir)  # the same request as bench/serving.py sends
    rates: dict[str, dict[str, list[float]]] = {"fathom": {"asyncio": [], "wrk": []},
                                                "litserve": {"asyncio": [], "wrk": []}}  # fmt: skip
    for index in range(rounds):
        order = ("fathom", "litserve") if index % 2 == 0 else ("litserve", "fathom")
        for name in order:
            server = (
                Server(run_dir, "--max-batch", "32")
                if name == "fathom"
                else LitServeProcess(run_dir)
            )
            try:
                rates[name]["asyncio"].append(
                    round(asyncio.run(closed_loop(server.port, payload, 64, seconds)), 1)
                )
                measured = wrk_rate(server.port, body, 64, seconds)
                if measured is not None:
                    rates[name]["wrk"].append(measured["rate"])
            finally:
                server.stop()
            print(name, {k: v[-1:] for k, v in rates[name].items()}, flush=True)
    ratios = {client: paired_speedup(list(zip(rates["fathom"][client], rates["litserve"][client], strict=True)))
              for client in ("asyncio", "wrk") if rates["fathom"][client]}  # fmt: skip
    return {"requests_per_second": rates, "fathom_over_litserve": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained MNIST classification run")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "serving-litserve.json")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the LitServe subprocess
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_with_litserve(args.serve, args.port)
        return
    if ls is None:
        raise SystemExit("LitServe is not installed: pip install litserve")
    machine, load_before = machine_info(), load_average()
    with tempfile.TemporaryDirectory() as folder:
        run_dir = args.run or train_run(Path(folder), args.quick)
        results = measure(run_dir, 1 if args.quick else args.rounds, 1.0 if args.quick else 10.0)
    record = {"benchmark": "serving-litserve", "quick": args.quick, "machine": machine,
              "litserve": ls.__version__, "load_before": load_before, "load_after": load_average(),
              "settings": {"fathom": "--max-batch 32 (greedy batches)",
                           "litserve": "max_batch_size 32, batch_timeout 2 ms, 1 worker"},
              "results": results}  # fmt: skip
    write_record(args.output, record)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
