"""``shiftlab study --quick`` end to end on real MNIST digits, and its report in headless Chromium.

``SHIFTLAB_QUICK_RUN=DIR`` checks a run that ``shiftlab study --quick --out DIR`` already wrote
instead of running one: ``.ci/wheel_smoke.sh`` passes the run of the installed wheel's command."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from chromium_probe import ARTIFACTS, CHROMIUM, probe_page, screenshot
from shiftlab.cli.main import main
from shiftlab.report import verdict
from shiftlab.report.figures import FIGURES
from shiftlab.study.config import StudyConfig
from shiftlab.study.results import load_results


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if os.environ.get("SHIFTLAB_QUICK_RUN"):
        return Path(os.environ["SHIFTLAB_QUICK_RUN"])
    out = tmp_path_factory.mktemp("quick")
    assert main(["study", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_study_writes_the_whole_run_directory(quick_run):
    results = load_results(quick_run)
    quick = StudyConfig.preset("quick")
    assert {r.model for r in results.runs} == set(quick.models)
    assert {r.condition for r in results.runs} == set(quick.conditions)
    assert results.meta.dataset == "mnist-5k" and results.meta.canvas_size == [48, 48]
    assert results.meta.workers >= 1 and results.meta.n_eval == quick.n_eval
    assert max(r.summary["test_accuracy"] for r in results.runs) > 0.8  # real learning on real digits
    assert {(c.downsampling, c.head) for c in results.analysis.cells} == {
        ("strided", "fc"), ("strided", "gap"), ("maxpool", "fc"), ("maxpool", "gap")}
    assert results.analysis.effects  # the quick preset is a balanced 2 x 2 x 2 factorial
    frame = pd.read_csv(quick_run / "results.csv")
    assert {"model", "downsampling", "head", "condition", "seed", "dy", "dx", "accuracy"} <= set(frame.columns)
    drawn = [spec for spec in FIGURES if (quick_run / "figures" / f"{spec.name}.png").exists()]
    assert len(drawn) >= 5
    for spec in drawn:
        assert (quick_run / "figures" / f"{spec.name}.svg").stat().st_size > 1000
    html = (quick_run / "report.html").read_text()
    assert verdict(results).answer.split(".")[0] in html  # the computed verdict is what the page says
    assert "http://" not in html and "https://" not in html
    assert "Smoke test, not evidence." in html  # the quick preset says what it is


def test_report_rebuilds_from_saved_results(quick_run):
    page = quick_run / "report.html"
    page.unlink()
    assert main(["report", str(quick_run)]) == 0
    assert page.is_file()


def test_resume_of_a_finished_quick_study_trains_nothing(quick_run):
    before = load_results(quick_run)
    assert main(["study", "--quick", "--out", str(quick_run), "--resume", "--no-report"]) == 0
    after = load_results(quick_run)
    assert [r.to_dict() for r in after.runs] == [r.to_dict() for r in before.runs]
    assert after.analysis.to_dict() == before.analysis.to_dict()


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium); CI installs it")
def test_quick_report_renders_in_chromium(quick_run, tmp_path):
    check = probe_page(quick_run / "report.html", tmp_path)
    assert check["errors"] == [] and check["resources"] == []
    assert len(check["images"]) >= 5
    assert all(img["complete"] and img["w"] > 0 for img in check["images"])
    shot = screenshot(quick_run / "report.html", ARTIFACTS / "quick-study-report.png", tmp_path)
    assert shot.startswith(b"\x89PNG") and len(shot) > 20_000
