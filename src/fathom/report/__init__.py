"""Plots and a self-contained HTML report of a run folder.

``write_report(run_dir)`` makes the figures (``make_plots``) and writes ``RUN/report.html``; pass
``extra_sections=[Section(title, html=..., headers=..., rows=...)]`` to add parts, and drop PNGs
into ``RUN/plots`` to have them shown under "Other figures". Features that run before the report
is written (tasks, diagnostics) store sections with ``save_section(run_dir, key, title, ...)``.

The names are imported when first used (PEP 562): ``fathom.report.sections`` needs only the
standard library, while the figures need matplotlib (about a second to import), which a training
run should not pay for before its report is written.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fathom.report.page import Section, figure_html, write_page, write_report
    from fathom.report.plots import make_plots, plot_confusion_matrix
    from fathom.report.sections import save_section

_HOMES = {
    "Section": "fathom.report.page",
    "figure_html": "fathom.report.page",
    "write_page": "fathom.report.page",
    "write_report": "fathom.report.page",
    "make_plots": "fathom.report.plots",
    "plot_confusion_matrix": "fathom.report.plots",
    "save_section": "fathom.report.sections",
}

__all__ = [
    "Section", "figure_html", "make_plots", "plot_confusion_matrix", "save_section",
    "write_page", "write_report",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'fathom.report' has no attribute '{name}'")
