"""Report sections that tasks and diagnostics store as ``RUN/sections/<key>.json``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fathom.files import atomic_write_json

SECTIONS_FOLDER = "sections"


def save_section(
    run_dir: str | os.PathLike[str],
    key: str,
    title: str,
    *,
    text: str = "",
    headers: Sequence[str] = (),
    rows: Sequence[Sequence[Any]] = (),
    images: Sequence[str] = (),
) -> Path:
    """Store a report section as ``RUN/sections/<key>.json``; every later report shows it.

    ``text`` is shown as escaped paragraphs (blank lines split them), ``rows`` as a table and
    ``images`` (paths relative to the run folder, e.g. ``plots/samples.png``) as figures. Tasks and
    diagnostics use this to add their results without changing the report writer.
    """
    record = {
        "title": title,
        "text": text,
        "headers": list(headers),
        "rows": [list(row) for row in rows],
        "images": list(images),
    }
    path = Path(run_dir) / SECTIONS_FOLDER / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)
    return path
