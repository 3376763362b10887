"""`fathom serve` on loopback under a bounded load generator (an asyncio HTTP/1.1 keep-alive
client in this process; the server is a separate `fathom serve` process on 127.0.0.1).

1. latency of single MNIST images sent at a fixed rate (default 200/s; latency measured from
   each request's scheduled time, so a stalled server is not hidden);
2. throughput at 64 concurrent clients, micro-batching on (--max-batch 32: a call takes what
   queued meanwhile) vs off (--max-batch 1), alternated over rounds, paired ratios;
3. malformed requests (wrong shapes, types, sizes, encodings, truncated bodies): 5xx count, then
   whether the server still answers /healthz.

    python bench/serving.py --run runs/mnist-fast      # the bench trains a short MNIST run if absent
    python bench/serving.py --quick                    # toy size (smoke test)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, load_average, machine_info, write_record  # noqa: E402
from export import train_run  # noqa: E402
from fathom.serving import free_port  # noqa: E402


def http_request(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def exchange(reader, writer, payload: bytes) -> int:
    """Send one request on a keep-alive connection and read the whole response: its status."""
    writer.write(payload)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def fixed_rate(port: int, payload: bytes, rate: float, seconds: float, connections: int = 32):
    """Requests at ``rate`` per second; latency from each request's scheduled send time."""
    total = int(rate * seconds)
    queue: asyncio.Queue[float] = asyncio.Queue()
    start = time.perf_counter() + 0.2
    for index in range(total):
        queue.put_nowait(start + index / rate)
    latencies, statuses = [], []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not queue.empty():
            scheduled = queue.get_nowait()
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            statuses.append(await exchange(reader, writer, payload))
            latencies.append(time.perf_counter() - scheduled)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    ms = np.array(latencies) * 1000
    return {"requests": total, "rate": rate, "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "non_200": sum(s != 200 for s in statuses)}  # fmt: skip


async def closed_loop(port: int, payload: bytes, clients: int, seconds: float) -> float:
    """Requests per second with ``clients`` connections each sending back to back."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            if await exchange(reader, writer, payload) == 200:
                done += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


def malformed_payloads(count: int, seed: int = 0) -> list[tuple[bytes, bool]]:
    """(raw request, truncated?) of every kind of fault, ``count`` in all, seeded."""
    rng = random.Random(seed)
    good = json.dumps({"inputs": np.zeros((28, 28), dtype=int).tolist(), "dtype": "uint8"}).encode()
    bodies = [
        b"{", b"\xff\xfe\xfd", b"[]", b"null", b'{"inputs": [[1, 2]]}', b'{"inputs": "x"}',
        b'{"inputs": [[[1], [2, 3]]]}', b'{"images": ["%%%"]}', b'{"images": ["aGVsbG8="]}',
        b'{"texts": ["hello"]}', b'{"inputs": [[NaN]]}', b'{"inputs": 1e999}', b"[" * 30_000,
        json.dumps({"inputs": np.full((28, 28), 999).tolist(), "dtype": "uint8"}).encode(),
        json.dumps({"inputs": np.zeros((100, 28, 28)).tolist()}).encode(),
        json.dumps({"inputs": np.zeros((28, 28)).tolist(), "dtype": "complex"}).encode(),
    ]  # fmt: skip
    requests: list[tuple[bytes, bool]] = []
    for index in range(count):
        kind = index % 5
        if kind < 3:
            requests.append((http_request("/predict", rng.choice(bodies)), False))
        elif kind == 3:
            noise = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400)))
            content_type = rng.choice(
                ["application/json", "multipart/form-data; boundary=b", "image/png"]
            )
            requests.append((http_request("/predict", noise, content_type), False))
        else:  # a body cut short: the declared length is never reached, the client hangs up
            whole = http_request("/predict", good)
            requests.append((whole[: rng.randint(10, len(whole) - 1)], True))
    return requests


async def send_malformed(port: int, requests: list[tuple[bytes, bool]], clients: int = 16):
    statuses: dict[str, int] = {}
    pending = list(requests)

    async def client() -> None:
        while pending:
            raw, truncated = pending.pop()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            if truncated:
                writer.write_eof()
            await writer.drain()
            head = await reader.read(64)
            code = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "closed"
            statuses[code] = statuses.get(code, 0) + 1
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return statuses


def wait_until_ready(process: subprocess.Popen, url: str, name: str) -> None:
    """Poll ``url`` until it answers; a server that exits or takes 5 minutes is an error."""
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start") from None
            time.sleep(0.2)


class Server:
    """A `fathom serve` process on a free loopback port."""

    def __init__(self, target: Path, *options: str) -> None:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "fathom",
            "serve",
            str(target),
            "--port",
            str(self.port),
            *options,
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=os.environ.copy())
        wait_until_ready(self.process, f"http://127.0.0.1:{self.port}/readyz", "fathom serve")

    def healthy(self) -> bool:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/healthz", timeout=30
        ) as response:
            return response.status == 200

    def stop(self) -> int:
        """SIGTERM, then the exit status: -15 after a graceful drain (uvicorn >= 0.29 re-raises
        the signal once it has shut down), not 0."""
        self.process.terminate()
        return self.process.wait(timeout=120)


def wrk_rate(port: int, body: bytes, clients: int, seconds: float) -> dict | None:
    """Requests per second from Debian's ``wrk`` (C, one thread: it leaves the server more of
    the 2 cores than the asyncio client does) with ``clients`` keep-alive connections POSTing
    ``body``; None when wrk is not installed."""
    if shutil.which("wrk") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f"wrk.body = {json.dumps(body.decode())}\n")  # fmt: skip
        output = subprocess.run(
            ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "-s", str(script),
             f"http://127.0.0.1:{port}/predict"], capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rate": float(rate.group(1)) if rate else 0.0,
        "non_2xx": int(failed.group(1)) if failed else 0,
    }


def paired_speedup(rounds: list[tuple[float, float]]) -> list[float]:
    """Mean and spread of the per-round ratios, (batching, no batching) rates each round."""
    ratios = [batching / plain for batching, plain in rounds]
    return [round(statistics.mean(ratios), 2), round(statistics.pstdev(ratios), 2)]


def image_request(run_dir: Path) -> tuple[bytes, bytes]:
    """The JSON body of one seeded grey image of the run's size (MNIST: 28x28, uint8 pixels)
    and the whole HTTP request carrying it to /predict."""
    from fathom.runs import load

    height, width = load(run_dir).info.input_shape[-2:]
    image = np.random.default_rng(0).integers(0, 256, (height, width)).tolist()
    body = json.dumps({"inputs": image, "dtype": "uint8"}).encode()
    return body, http_request("/predict", body)


def run_benchmark(run_dir: Path, quick: bool, rounds: int) -> dict:
    body, payload = image_request(run_dir)
    seconds = 1.0 if quick else 10.0
    results: dict = {"throughput": {"batching": [], "no_batching": []}}
    for round_index in range(rounds):
        for mode, options in (("batching", ["--max-batch", "32"]),
                              ("no_batching", ["--max-batch", "1", "--max-wait-ms", "0"])):  # fmt: skip
            server = Server(run_dir, *options)
            try:
                if mode == "batching" and round_index == 0:
                    results["fixed_rate"] = asyncio.run(
                        fixed_rate(server.port, payload, 200, seconds)
                    )
                rate = asyncio.run(closed_loop(server.port, payload, 64, seconds))
                results["throughput"][mode].append(round(rate, 1))
                measured = wrk_rate(server.port, body, 64, seconds)
                if measured is not None:
                    results.setdefault("throughput_wrk", {"batching": [], "no_batching": []})
                    results["throughput_wrk"][mode].append(measured)
            finally:
                server.stop()
    throughput = results["throughput"]
    results["batching_speedup"] = paired_speedup(
        list(zip(throughput["batching"], throughput["no_batching"], strict=True))
    )
    if "throughput_wrk" in results:
        wrk = results["throughput_wrk"]
        rounds = [(a["rate"], b["rate"]) for a, b in zip(wrk["batching"], wrk["no_batching"], strict=True)
                  if b["rate"]]  # fmt: skip
        results["batching_speedup_wrk"] = paired_speedup(rounds) if rounds else None
    server = Server(run_dir)
    try:
        count = 500 if quick else 10_000
        started = time.perf_counter()
        statuses = asyncio.run(send_malformed(server.port, malformed_payloads(count)))
        results["malformed"] = {
            "requests": count, "statuses": statuses, "seconds": round(time.perf_counter() - started, 1),
            "responses_5xx": sum(n for code, n in statuses.items() if code.startswith("5")),
            "still_answers": server.healthy(),
        }  # fmt: skip
    finally:
        results["malformed"]["exit_status_after_sigterm"] = server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, help="a trained MNIST classification run")
    parser.add_argument("--quick", action="store_true", help="toy size (smoke test)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "serving.json")
    args = parser.parse_args()
    machine, load_before = machine_info(), load_average()
    with tempfile.TemporaryDirectory() as folder:
        run_dir = args.run or train_run(Path(folder), args.quick)
        results = run_benchmark(run_dir, args.quick, 1 if args.quick else args.rounds)
    record = {"benchmark": "serving", "quick": args.quick, "machine": machine, "seeds": [0],
              "load_before": load_before, "load_after": load_average(), "client": "asyncio HTTP/1.1 keep-alive, same machine; also wrk -t1 -c64 where installed",
              "goals": {"p50_ms": 5, "p99_ms": 20, "batching_speedup": 3, "responses_5xx": 0},
              "results": results}  # fmt: skip
    write_record(args.output, record)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
