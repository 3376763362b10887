"""Tiny trained runs for the export and serving tests: the embedded digits CNN and a text
classifier on a few dozen sentences (seconds each on 2 cores)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fathom.cli import main

WORDS = {
    "good": ["good great fine movie", "great acting and a good story", "a fine good film"],
    "bad": ["bad awful boring movie", "awful acting and a bad story", "a boring bad film"],
}


def train_digits(folder: Path) -> Path:
    assert main(["train", "--quiet", "--run-dir", str(folder), "--name", "digits",
                 "train.epochs=1", "train.precision=fp32"]) == 0  # fmt: skip
    return folder / "digits"


def train_text(folder: Path) -> Path:
    table = folder / "reviews.csv"
    rows = [f'"{text}",{label}' for label, texts in WORDS.items() for text in texts] * 8
    table.write_text("review,label\n" + "\n".join(rows) + "\n")
    assert main([
        "train", str(table), "--quiet", "--run-dir", str(folder), "--name", "text",
        "--model", "transformer_encoder", "data.text_column=review", "data.target=label",
        "data.tokenizer=word", "data.max_length=16", "model.dim=16", "model.depth=1",
        "model.heads=2", "model.max_length=16", "train.epochs=1", "train.precision=fp32",
    ]) == 0  # fmt: skip
    return folder / "text"


def request(url: str, body: bytes | None = None, content_type: str = "application/json"):
    """(status, parsed JSON or text) of a GET (no body) or POST."""
    headers = {"Content-Type": content_type} if body is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=120) as r:
            status, payload = r.status, r.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode()


def post_json(url: str, value: Any):
    return request(url, json.dumps(value).encode())


def multipart(files: list[bytes], boundary: str = "fathomtest") -> tuple[bytes, str]:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{i}.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, data in enumerate(files)
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
