"""Plots and a self-contained HTML report of a run folder.

``write_report(run_dir)`` makes the figures (``make_plots``) and writes ``RUN/report.html``; pass
``extra_sections=[Section(title, html=..., headers=..., rows=...)]`` to add parts, and drop PNGs
into ``RUN/plots`` to have them shown under "Other figures". Features that run before the report
is written (tasks, diagnostics) store sections with ``save_section(run_dir, key, title, ...)``.
"""

from fathom.report.page import Section, figure_html, write_page, write_report
from fathom.report.plots import make_plots, plot_confusion_matrix
from fathom.report.sections import save_section

__all__ = [
    "Section",
    "figure_html",
    "make_plots",
    "plot_confusion_matrix",
    "save_section",
    "write_page",
    "write_report",
]
