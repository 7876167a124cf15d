"""``build_report(run_dir)``: results.json -> figures (PNG + SVG) and a self-contained report.html."""

from __future__ import annotations

from pathlib import Path

from shiftlab.io import write_bytes_atomic, write_text_atomic
from shiftlab.study.results import load_results

from .figures import FIGURES, render
from .page import render_page
from .verdict import verdict

__all__ = ["FIGURES_DIR", "REPORT_FILE", "build_report"]

REPORT_FILE = "report.html"
FIGURES_DIR = "figures"


def build_report(run_dir: str | Path) -> Path:
    """Build the report of a study run from its saved results (no retraining).

    Reads ``run_dir/results.json`` (or ``results.json.xz``, as published runs ship it), writes each
    figure to ``run_dir/figures/<name>.png`` and
    ``.svg`` and the page to ``run_dir/report.html``, and returns the page's path. Everything is
    computed and drawn in memory first and each file is replaced atomically (the page last), so a
    failure leaves the previous report untouched. See ``docs/study.md``, "Report".

    Raises:
        FileNotFoundError: no ``results.json`` in ``run_dir``.
        ValueError: ``results.json`` is damaged or from another schema version.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} does not exist: run `shiftlab study --out {run_dir}` first")
    results = load_results(run_dir)
    v = verdict(results)
    drawn = []
    for spec in FIGURES:
        fig = spec.draw(results)
        if fig is not None:
            drawn.append((spec, *render(fig)))
    page = render_page(results, v, [(spec, png) for spec, png, _ in drawn], run_dir)
    for spec, png, svg in drawn:
        write_bytes_atomic(run_dir / FIGURES_DIR / f"{spec.name}.png", png, root=run_dir)
        write_bytes_atomic(run_dir / FIGURES_DIR / f"{spec.name}.svg", svg.encode("utf-8"), root=run_dir)
    out = run_dir / REPORT_FILE
    write_text_atomic(out, page, root=run_dir)
    return out
