"""The real server (uvicorn in a thread, free loopback port): endpoints, predictions equal to
``fathom predict``, micro-batching, limits, malformed requests, timeouts, graceful shutdown."""

from __future__ import annotations

import base64
import io
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fathom.cli import main
from fathom.data.splits import normalize_inputs
from fathom.export import export_run
from fathom.runs import load
from fathom.serving import (
    BackgroundServer,
    ServedModel,
    ServerSettings,
    create_app,
    load_served_model,
)
from fathom.serving.inputs import read_texts
from serving_support import multipart, post_json, request, train_digits, train_text


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return train_digits(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def server(digits_run):
    settings = ServerSettings(max_batch=8, max_wait_ms=300, max_examples=4, max_body_bytes=100_000,
                              max_image_side=256)  # fmt: skip
    with BackgroundServer(create_app(load_served_model(digits_run), settings)) as running:
        yield running


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def digit_png(seed: int = 0, size: int = 8) -> bytes:
    return png(np.random.default_rng(seed).integers(0, 256, (size, size)))


def probabilities(answer: dict) -> list[float]:
    top = sorted(answer["top"], key=lambda item: item["index"])
    return [item["probability"] for item in top]


def test_health_ready_info_schema_and_page(server) -> None:
    assert request(server.url + "/healthz") == (200, {"status": "ok"})
    assert request(server.url + "/readyz") == (200, {"ready": True})
    status, info = request(server.url + "/info")
    assert info["run"] == "digits" and info["input_kind"] == "image" and len(info["sha256"]) == 64
    status, schema = request(server.url + "/openapi.json")
    assert "multipart/form-data" in schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    status, page = request(server.url + "/")
    assert status == 200 and 'id="canvas"' in page and "digits" in page


def test_predictions_equal_fathom_predict(server, digits_run, tmp_path) -> None:
    file = tmp_path / "digit.png"
    file.write_bytes(digit_png(1))
    expected = load(digits_run).predict([file])[0].numpy()
    body, kind = multipart([file.read_bytes()])
    status, answer = request(server.url + "/predict?top_k=10", body, kind)
    assert status == 200 and answer["run"] == "digits" and answer["backend"] == "torch"
    np.testing.assert_allclose(probabilities(answer["predictions"][0]), expected, atol=1e-6)
    encoded = base64.b64encode(file.read_bytes()).decode()
    status, answer = post_json(server.url + "/predict", {"images": [encoded], "top_k": 10})
    np.testing.assert_allclose(probabilities(answer["predictions"][0]), expected, atol=1e-6)
    pixels = np.asarray(Image.open(file)).tolist()  # uint8 pixels as a JSON array
    status, answer = post_json(
        server.url + "/predict", {"inputs": pixels, "dtype": "uint8", "top_k": 10}
    )
    np.testing.assert_allclose(probabilities(answer["predictions"][0]), expected, atol=1e-6)


def batch_counts(server) -> tuple[float, float]:
    _, text = request(server.url + "/metrics")
    count = float(re.search(r"^fathom_batch_size_count (\S+)", text, re.M).group(1))
    total = float(re.search(r"^fathom_batch_size_sum (\S+)", text, re.M).group(1))
    return count, total


def test_concurrent_requests_are_grouped(server) -> None:
    before = batch_counts(server)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(
            lambda seed: post_json(server.url + "/predict", {"inputs": np.random.default_rng(seed).random((1, 8, 8)).tolist()}),
            range(8),
        ))  # fmt: skip
    assert all(status == 200 for status, _ in answers)
    after = batch_counts(server)
    calls, examples = after[0] - before[0], after[1] - before[1]
    assert examples == 8 and calls < 8  # at least two requests ran in one model call


BAD_JSON = [
    (b"{", 400), (b"\xff\xfe\x00", 400), (b"[1, 2]", 422), (b'{"inputs": [[1, 2]]}', 422),
    (b'{"inputs": "pixels"}', 422), (b'{"inputs": [[[1, 2], [3]]]}', 422),
    (b'{"inputs": [[[NaN]]]}', 422), (b'{"images": ["not base64!"]}', 400),
    (b'{"images": ["aGVsbG8="]}', 400), (b'{"images": [1]}', 422), (b'{"texts": ["hi"]}', 422),
    (b'{"inputs": [], "images": []}', 422), (b'{"inputz": []}', 422),
    (b'{"inputs": ' + str(np.full((1, 8, 8), 2.0).tolist()).encode() + b"}", 422),
    (b'{"inputs": ' + str(np.full((1, 8, 8), 300).tolist()).encode() + b', "dtype": "uint8"}', 422),
    (b'{"inputs": ' + str(np.zeros((5, 8, 8)).tolist()).encode() + b"}", 413),
    (b'{"inputs": ' + str(np.zeros((1, 8, 8)).tolist()).encode() + b', "dtype": "float16"}', 422),
    (b'{"inputs": ' + str(np.zeros((1, 8, 8)).tolist()).encode() + b', "top_k": -1}', 422),
    (b"[" * 100_001, 413), (b"[" * 50_000, 400),
]  # fmt: skip


def test_malformed_requests_get_one_4xx_line_each(server) -> None:
    for body, expected in BAD_JSON:
        status, answer = request(server.url + "/predict", body)
        assert status == expected, (body[:60], answer)
        assert isinstance(answer["error"], str) and "\n" not in answer["error"]
    huge = png(np.zeros((300, 20)))
    cases = [(multipart([huge]), 413), (multipart([b"GIF89a truncated"]), 400),
             (multipart([digit_png()] * 5), 413), ((b"--x\r\n", "multipart/form-data; boundary=x"), 422),
             ((b"a,b", "text/csv"), 415)]  # fmt: skip
    for (body, kind), expected in cases:
        assert request(server.url + "/predict", body, kind)[0] == expected
    assert request(server.url + "/predict")[0] == 405  # GET on a POST route
    assert request(server.url + "/nowhere")[0] == 404


def test_truncated_body_and_garbage_leave_the_server_answering(server) -> None:
    for raw in (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 5000\r\n\r\n{"inputs": [[',
        b"\x16\x03\x01 not http at all\r\n\r\n",
    ):
        with socket.create_connection((server.host, server.port), timeout=30) as connection:
            connection.sendall(raw)
            connection.shutdown(socket.SHUT_WR)
            reply = connection.recv(200)
        assert not reply.startswith(b"HTTP/1.1 5")
    assert request(server.url + "/healthz")[0] == 200
    _, text = request(server.url + "/metrics")
    assert not re.search(r'fathom_requests_total\{path="[^"]*",status="5\d\d"\}', text)


def slow_model(started: threading.Event, seconds: float) -> ServedModel:
    from fathom.data.bundle import DataInfo

    def predict(batch: np.ndarray) -> np.ndarray:
        started.set()
        time.sleep(seconds)
        return np.full((len(batch), 2), 0.5, dtype=np.float32)

    info = DataInfo("toy", "classification", (3,), 2, ["a", "b"])
    return ServedModel(info, "classification", True, "toy", "0" * 64, "torch", predict)


def test_timeout_is_503_and_shutdown_finishes_in_flight_requests() -> None:
    started = threading.Event()
    settings = ServerSettings(timeout_seconds=0.2, max_wait_ms=0)
    with BackgroundServer(create_app(slow_model(started, 2.0), settings)) as server:
        status, answer = post_json(server.url + "/predict", {"inputs": [1, 2, 3]})
        assert status == 503 and "busy" in answer["error"]
    started.clear()
    settings = ServerSettings(timeout_seconds=60, max_wait_ms=0)
    server = BackgroundServer(create_app(slow_model(started, 1.0), settings)).__enter__()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post_json, server.url + "/predict", {"inputs": [1, 2, 3]})
        assert started.wait(60)
        server.__exit__()  # asks uvicorn to stop while the request is being computed
        status, answer = pending.result()
    assert status == 200 and answer["predictions"][0]["top"][0]["probability"] == 0.5


def test_onnx_file_and_text_models_serve(digits_run, tmp_path) -> None:
    export_run(load(digits_run), "onnx", tmp_path / "digits.onnx", dynamic_batch=True)
    inputs = np.random.default_rng(0).random((2, 1, 8, 8))
    run = load(digits_run)  # raw [0, 1] pixels in, the run's normalisation applied by the server
    statistics = run.info.normalization
    expected = run.predict(normalize_inputs(torch.from_numpy(inputs).float(), **statistics))
    with BackgroundServer(create_app(load_served_model(tmp_path / "digits.onnx"))) as server:
        status, answer = post_json(
            server.url + "/predict", {"inputs": inputs.tolist(), "top_k": 10}
        )
        assert status == 200 and answer["backend"] == "onnxruntime" and answer["run"] == "digits"
        for row, probabilities_expected in zip(
            answer["predictions"], expected.numpy(), strict=True
        ):
            np.testing.assert_allclose(probabilities(row), probabilities_expected, atol=1e-5)
    text_run = train_text(tmp_path)
    texts = ["a great good film", "an awful boring story"]
    tokens = read_texts(load_served_model(text_run), texts, ServerSettings().limits)
    expected = load(text_run).predict(torch.from_numpy(tokens))
    with BackgroundServer(create_app(load_served_model(text_run, "onnxruntime"))) as server:
        status, answer = post_json(server.url + "/predict", {"texts": texts, "top_k": 2})
        assert status == 200
        probabilities_served = [
            max(item["probability"] for item in row["top"]) for row in answer["predictions"]
        ]
        np.testing.assert_allclose(
            probabilities_served, expected.max(dim=1).values.numpy(), atol=1e-5
        )
        assert post_json(server.url + "/predict", {"texts": ["x" * 20_000]})[0] == 413


def test_serve_command_refuses_bad_targets_in_one_line(digits_run, tmp_path, capsys) -> None:
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    (tmp_path / "m.onnx").write_bytes(b"not onnx")
    assert main(["serve", str(tmp_path / "m.onnx")]) == 2
    assert main(["serve", str(tmp_path / "m.onnx"), "--backend", "torch"]) == 2
    assert main(["serve", str(digits_run), "--backend", "tensorrt"]) == 2
    assert main(["serve", str(digits_run), "--max-batch", "0"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 5 and all(line.startswith("fathom serve: error:") for line in errors)
