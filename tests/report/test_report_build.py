"""build_report: every figure as PNG and SVG, a self-contained page, atomic writes."""

from __future__ import annotations

import base64
import json
import re

import pytest

from shiftlab.report import build_report, verdict
from shiftlab.report import figures as report_figures
from shiftlab.report.figures import FIGURES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tmp_files(run_dir):
    return [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


def test_writes_every_figure_as_png_and_svg(built_report):
    run_dir = built_report.parent
    assert built_report == run_dir / "report.html" and built_report.is_file()
    for spec in FIGURES:
        png = (run_dir / "figures" / f"{spec.name}.png").read_bytes()
        svg = (run_dir / "figures" / f"{spec.name}.svg").read_text(encoding="utf-8")
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
        assert "<svg" in svg[:1000] and svg.rstrip().endswith("</svg>")
    assert not _tmp_files(run_dir)


def test_page_is_self_contained(built_report):
    page = built_report.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    lowered = page.lower()
    for forbidden in ("<script", "<link", "@import", "url(", "<iframe", "src=\"figures/", "//fonts"):
        assert forbidden not in lowered, forbidden
    # every figure embedded as a data URI, byte for byte the PNG on disk
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == len(FIGURES)
    on_disk = {(built_report.parent / "figures" / f"{s.name}.png").read_bytes() for s in FIGURES}
    assert {base64.b64decode(u) for u in uris} == on_disk
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))


def test_page_content_in_order(built_report):
    page = built_report.read_text(encoding="utf-8")
    results = json.loads((built_report.parent / "results.json").read_text())
    v = verdict(results)
    order = [page.index(s) for s in ('id="question"', 'id="answer"', 'id="claims"', 'id="evidence"', 'id="methods"')]
    assert order == sorted(order)
    assert "Does a fully convolutional network share the same translation invariance properties" in page
    assert v.answer.split("\n\n")[0].split(":")[0] in page
    for c in v.claims:
        assert f"<td>{c.id}</td>" in page
    for status in {c.status for c in v.claims}:
        assert f'class="badge {status.replace(" ", "-")}"' in page
    for cap in ("Figure 1.", f"Figure {len(FIGURES)}."):
        assert cap in page
    assert "shiftlab study --dataset digits --epochs 2 --out run" in page  # the reproduce command from config
    assert "CONSISTENCY_MARGIN" in page  # thresholds are on the page


def test_rebuild_is_deterministic(run_dir):
    first = build_report(run_dir).read_bytes()
    png = (run_dir / "figures" / "consistency.png").read_bytes()
    second = build_report(run_dir).read_bytes()
    assert first == second and png == (run_dir / "figures" / "consistency.png").read_bytes()


def test_failure_midway_leaves_previous_report_intact(run_dir, monkeypatch):
    old = "<html>previous report</html>"
    (run_dir / "report.html").write_text(old, encoding="utf-8")

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(report_figures, "fig_periodicity", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        build_report(run_dir)
    assert (run_dir / "report.html").read_text(encoding="utf-8") == old
    assert not _tmp_files(run_dir)


def test_failure_while_writing_leaves_no_temp_file(run_dir, monkeypatch):
    import shiftlab.io as sio

    old = "<html>previous report</html>"
    (run_dir / "report.html").write_text(old, encoding="utf-8")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(sio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        build_report(run_dir)
    assert (run_dir / "report.html").read_text(encoding="utf-8") == old
    assert not _tmp_files(run_dir)


def test_reproduce_command_from_a_study_config(tmp_path):
    from shiftlab.report.html import _command
    from shiftlab.study.config import StudyConfig

    cmd, note = _command(StudyConfig.quick(data="digits").to_dict(), tmp_path / "run")
    assert cmd == f"shiftlab study --quick --data digits --seeds 1 --epochs {StudyConfig.quick().epochs} --out {tmp_path / 'run'}"
    cmd, _ = _command(StudyConfig(models=("fcn_gap", "maxpool_fc"), conditions=("centred",)).to_dict(), tmp_path)
    assert "--models fcn_gap,maxpool_fc --conditions centred" in cmd and "--quick" not in cmd
    _, note = _command(StudyConfig(lr=0.01).to_dict(), tmp_path)
    assert "lr differs" in note and "run_study" in note
