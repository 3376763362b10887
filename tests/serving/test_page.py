"""The page at / in headless Chromium: /#demo draws a digit, sends it, and shows the answer."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fathom.serving import BackgroundServer, create_app, load_served_model
from serving_support import train_digits


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")


def test_page_sends_a_drawing_and_shows_the_classes(tmp_path: Path) -> None:
    browser = chromium()
    run = train_digits(tmp_path)
    with BackgroundServer(create_app(load_served_model(run))) as server:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu",
                   f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000",
                   "--dump-dom", f"{server.url}/#demo"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert 'data-state="answered"' in dom, dom[-3000:]
    rows = re.findall(r'<tr class="prediction"><td>(.*?)</td><td>([0-9.]+)</td>', dom)
    assert len(rows) == 5 and {html.unescape(name) for name, _ in rows} <= set("0123456789")
    assert all(0.0 <= float(probability) <= 1.0 for _, probability in rows)
