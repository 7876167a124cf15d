"""``shiftlab study --quick`` end to end on real MNIST digits, and its report in headless Chromium."""

from __future__ import annotations

import csv
import json

import pytest
from chromium_probe import ARTIFACTS, CHROMIUM, probe_page, screenshot

from shiftlab.cli.main import main
from shiftlab.report import verdict
from shiftlab.report.figures import FIGURES
from shiftlab.zoo import names


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    assert main(["study", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_study_writes_the_whole_run_directory(quick_run):
    results = json.loads((quick_run / "results.json").read_text())
    assert {r["model"] for r in results["runs"]} == set(names())
    assert {r["condition"] for r in results["runs"]} == {"centred", "augmented"}
    assert results["meta"]["dataset"] == "mnist-5k" and results["meta"]["canvas_size"] == [48, 48]
    aps = [r for r in results["runs"] if r["model"] == "aps_gap"]
    assert all(r["circular"]["consistency"] == 1.0 for r in aps)  # exact, whatever the training
    assert max(r["test_accuracy"] for r in results["runs"]) > 0.8  # real learning on real digits
    rows = list(csv.DictReader((quick_run / "results.csv").open()))
    assert {"model", "condition", "seed", "dy", "dx", "accuracy"} <= set(rows[0])
    for spec in FIGURES:
        for suffix in (".png", ".svg"):
            assert (quick_run / "figures" / f"{spec.name}{suffix}").stat().st_size > 1000
    html = (quick_run / "report.html").read_text()
    assert verdict(results).answer.split(".")[0] in html  # the computed verdict is what the page says
    assert "http://" not in html and "https://" not in html


def test_report_rebuilds_from_saved_results(quick_run):
    page = quick_run / "report.html"
    page.unlink()
    assert main(["report", str(quick_run)]) == 0
    assert page.is_file()


def test_resume_of_a_finished_quick_study_trains_nothing(quick_run, capsys):
    before = (quick_run / "results.json").read_text()
    assert main(["study", "--quick", "--out", str(quick_run), "--resume", "--no-report"]) == 0
    after = json.loads((quick_run / "results.json").read_text())
    assert after["runs"] == json.loads(before)["runs"]


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium); CI installs it")
def test_quick_report_renders_in_chromium(quick_run, tmp_path):
    check = probe_page(quick_run / "report.html", tmp_path)
    assert check["errors"] == [] and check["resources"] == []
    assert len(check["images"]) == len(FIGURES)
    assert all(img["complete"] and img["w"] > 0 for img in check["images"])
    shot = screenshot(quick_run / "report.html", ARTIFACTS / "quick-study-report.png", tmp_path)
    assert shot.startswith(b"\x89PNG") and len(shot) > 20_000
