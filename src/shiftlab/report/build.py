"""``build_report(run_dir)``: results.json -> figures (PNG + SVG) and a self-contained report.html."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from shiftlab.io import write_text_atomic

from . import figures as _figures
from .aggregate import aggregate
from .html import render_html
from .load import load_results
from .verdict import verdict

__all__ = ["REPORT_FILE", "FIGURES_DIR", "build_report"]

REPORT_FILE = "report.html"
FIGURES_DIR = "figures"


def _file_mode() -> int:
    """The mode ``open()`` would give a new file (0o666 minus the umask); ``mkstemp`` gives 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    """Like :func:`shiftlab.io.write_text_atomic`, for bytes (and with the usual file mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_report(run_dir: str | Path) -> Path:
    """Build the report of a study run from its saved results (no retraining).

    Reads ``run_dir/results.json``, writes every figure to ``run_dir/figures/<name>.png`` and
    ``.svg`` and the page to ``run_dir/report.html``, and returns the page's path. Everything is
    computed and drawn in memory first and each file is replaced atomically (``report.html`` last,
    with :func:`shiftlab.io.write_text_atomic`), so a failure leaves the previous report untouched.

    Raises:
        FileNotFoundError: no ``run_dir`` or no ``results.json`` in it.
        ValueError: ``results.json`` is corrupt or does not follow :mod:`shiftlab.study.schema`.
    """
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    groups = aggregate(results)
    v = verdict(results)
    rendered: list[tuple[_figures.FigureSpec, bytes, str]] = []
    for spec in _figures.FIGURES:
        if spec.function == "fig_sources":
            fig = spec.draw(groups, v.numbers.get("sources"))
        else:
            fig = spec.draw(groups)
        if fig is None:
            continue
        png, svg = _figures.render(fig)
        rendered.append((spec, png, svg))
    page = render_html(results, groups, v, [(spec, png) for spec, png, _ in rendered], run_dir)
    fig_dir = run_dir / FIGURES_DIR
    for spec, png, svg in rendered:
        _write_bytes_atomic(fig_dir / f"{spec.name}.png", png)
        _write_bytes_atomic(fig_dir / f"{spec.name}.svg", svg.encode("utf-8"))
    out = run_dir / REPORT_FILE
    write_text_atomic(out, page)
    os.chmod(out, _file_mode())  # write_text_atomic's temporary file is 0o600; a report is for reading
    return out
