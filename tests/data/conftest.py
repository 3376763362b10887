"""Fixtures for the dataset tests: the shared dataset copies, a local HTTP server, small files."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def shared_path(*parts: str) -> Path:
    """A path under the shared datasets, skipping the test cleanly where it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


@pytest.fixture(scope="session")
def shared_file():
    """``shared_file(*parts)``: a path under the shared datasets (the test skips if it is absent)."""
    return shared_path


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    shared_path("mnist", "train-images-idx3-ubyte.gz")
    return SHARED


@pytest.fixture(scope="session")
def mnist_raw(mnist_root: Path):
    """MNIST decoded once per session (a few seconds), exactly as the factory returns it."""
    from fathom.data.vision import mnist

    return mnist(mnist_root, download=False)


@dataclass
class FileServer:
    """A local HTTP server over ``folder`` that records every requested path."""

    folder: Path
    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    folder = tmp_path / "served"
    folder.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    handler = functools.partial(Handler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield FileServer(folder, f"http://127.0.0.1:{server.server_address[1]}/", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_image(
    path: Path, size: tuple[int, int] = (8, 8), mode: str = "RGB", value: int = 128
) -> Path:
    """Write a small image whose pixels vary with position, so resizing and channels are visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    ramp = (np.arange(width * height).reshape(height, width) * 7 + value) % 256
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    array = np.repeat(ramp[:, :, None], channels, axis=2).astype(np.uint8)
    Image.fromarray(array[:, :, 0] if mode == "L" else array).save(path)
    return path


@pytest.fixture(scope="session")
def image_writer():
    """``image_writer(path, size=(w, h), mode="RGB", value=128)`` writes a small test image."""
    return write_image


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    """Three classes of small RGB images of varying sizes: cat (3), dog (2), fox (2)."""
    root = tmp_path / "animals"
    for name, count in (("cat", 3), ("dog", 2), ("fox", 2)):
        for index in range(count):
            write_image(root / name / f"{index}.png", size=(8 + index, 8), value=40 * index)
    return root
