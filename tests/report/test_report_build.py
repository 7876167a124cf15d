"""``build_report``: one self-contained page with every section, figures as PNG and SVG, written
atomically."""

from __future__ import annotations

import re

import pytest

from shiftlab.report import build_report, verdict
from shiftlab.report.figures import FIGURES
from shiftlab.report.page import SECTIONS


def test_page_has_every_section_and_figure(built_report, run_dir):
    page = built_report.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    for spec in FIGURES:
        assert (run_dir / "figures" / f"{spec.name}.png").stat().st_size > 5000
        assert (run_dir / "figures" / f"{spec.name}.svg").read_text().startswith("<?xml")
        assert f'id="fig-{spec.name}"' in page
    assert page.count("data:image/png;base64,") == len(FIGURES)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "Does a fully convolutional network share" in page


def test_page_shows_the_answer_the_table_and_the_methods(built_report, full_results):
    from shiftlab.report import verdict

    page = built_report.read_text(encoding="utf-8")
    first = verdict(full_results).answer.split("\n\n")[0]
    assert first.split(":")[0] in page
    # every cell of the factorial table, its metrics with intervals
    assert page.count('<tr><td class="model">') >= len(full_results.analysis.cells)
    assert re.search(r'\d\.\d{3} <span class="ci">\[\d\.\d\d, \d\.\d\d\]</span>', page)
    assert "6,330" in page and "converged" in page
    for word in ("AdamW", "bootstrap", "margin", "shiftlab report", "Wall time", "Rebuild", "121 shifts"):
        assert word in page
    # n_boot and margin are not CLI options: the page says so and gives the Python call
    assert "run_study(StudyConfig.from_dict" in page and "cannot be set on the command line" in page
    assert "main" in page and "interaction" in page


def test_a_failure_leaves_the_previous_report(run_dir, monkeypatch):
    path = build_report(run_dir)
    before = path.read_text()
    import shiftlab.report.build as build

    def boom(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(build, "render_page", boom)
    with pytest.raises(RuntimeError):
        build_report(run_dir)
    assert path.read_text() == before


def test_a_real_study_is_not_called_a_smoke_test(built_report):
    assert "Smoke test" not in built_report.read_text(encoding="utf-8")


def test_the_hardware_line_names_the_ranks_of_a_distributed_run(full_results, tmp_path):
    from dataclasses import replace

    from shiftlab.report.methods import methods_html

    single = methods_html(full_results, tmp_path)
    assert "ranks" not in single.split("Hardware")[1].split("Software")[0]
    distributed = replace(full_results, meta=replace(full_results.meta, ranks=2))
    assert "2 torch.distributed ranks, " in methods_html(distributed, tmp_path).split("Hardware")[1].split("Software")[0]


def test_figures_are_palette_pngs_that_look_like_the_full_colour_render(full_results, monkeypatch):
    import io

    import numpy as np
    from PIL import Image

    from shiftlab.report.figures import style

    for spec in FIGURES:
        png, _ = style.render(spec.draw(full_results))
        with monkeypatch.context() as m:
            m.setattr(style, "_palette_png", lambda png: png)
            full, _ = style.render(spec.draw(full_results))
        ours, theirs = Image.open(io.BytesIO(png)), Image.open(io.BytesIO(full))
        assert ours.mode == "P" and theirs.mode == "RGBA" and ours.size == theirs.size
        a = np.asarray(ours.convert("RGB"), dtype=float)
        b = np.asarray(theirs.convert("RGB"), dtype=float)
        assert np.abs(a - b).mean() < 1.0, spec.name  # under one grey level on average
        assert len(png) < 0.6 * len(full), spec.name


def test_the_answer_opens_with_both_questions_beside_its_figure_and_the_evidence_folds(built_report, full_results):
    page = built_report.read_text(encoding="utf-8")
    answer = page[page.index('<section id="answer">'):page.index('<section id="points">')]
    opening = answer[answer.index('<div class="opening">'):answer.index('<p class="note">')]
    assert answer.index('<p class="note">') < answer.index('<details class="evidence">')
    assert opening.index("<h3>1. Does a fully convolutional network") < opening.index("<h3>2. If not, why")
    assert "<b>Strided-CNN FCN (strided_gap):</b> Partly." in opening and '<figure id="fig-answer"' in opening
    # about 120 words of answer with one FCN, 30 of caption
    assert len(re.sub(r"<[^>]+>|data:image/png;base64,[A-Za-z0-9+/=]+", " ", opening).split()) < 160
    evidence = answer[answer.index('<details class="evidence">'):]
    assert verdict(full_results).answer.split("\n\n")[0].split(":")[0] in evidence
    assert page.count('id="fig-answer"') == 1  # not again among the figures


def test_a_run_of_the_second_design_is_marked_superseded(tmp_path, full_results, built_report):
    import copy

    from shiftlab.study.results import write_results

    assert "The second study design." not in built_report.read_text(encoding="utf-8")
    old = copy.deepcopy(full_results)
    for field in ("schedule", "stop_at_target", "shift_set", "param_matched"):  # a config.json written before them
        old.config.pop(field)
    out = tmp_path / "old"
    out.mkdir()
    write_results(out, old)
    page = build_report(out).read_text(encoding="utf-8")
    assert "<b>The second study design.</b>" in page and "constant learning rate 0.01" in page


def test_agreement_and_accuracy_by_distance_band_are_tabled_with_intervals(built_report, residue_results):
    from shiftlab.report.tables import bands_table

    page = built_report.read_text(encoding="utf-8")
    block = page[page.index("<h3>By distance</h3>"):]
    assert block.index("<th>1 px</th>") < block.index("<th>2-3 px</th>") < block.index("<th>9-10 px</th>")
    assert re.search(r'<td class="num">0\.\d{3} <span class="ci">\[0\.\d\d, 0\.\d\d\]</span></td>', block)
    assert bands_table(residue_results) == ""  # no band metrics, as in the second design's results
