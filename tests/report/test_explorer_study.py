"""The shift explorer end to end on a small real study (MNIST digits, two trained models):
its data computed from the checkpoints (``shiftlab report RUN --explorer``) reproduces the
study's own measurements exactly, and the report's explorer, driven in a real Chromium
(Selenium with Debian's chromium-driver), shows the values of ``results.json``."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from chromium_probe import ARTIFACTS
from shiftlab.cli.main import main
from shiftlab.io import write_json_atomic
from shiftlab.report.explorer import add_explorer
from shiftlab.study.config import StudyConfig
from shiftlab.study.job import record_paths
from shiftlab.study.lock import RunDirLocked, run_dir_lock
from shiftlab.study.measurements import EXPLORER_IMAGES
from shiftlab.study.results import load_results, write_results
from shiftlab.study.runner import run_study

CONFIG = StudyConfig(models=("strided_gap", "blurstrided_gap"), conditions=("centred",), seeds=1, max_epochs=2,
                     n_train=500, n_test=100, n_eval=EXPLORER_IMAGES, n_profile=2, n_boot=50, width=4,
                     capacity_widths=())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, dict]:
    """A small real study, and the explorer data its records hold (key -> ExplorerRecord or None)."""
    out = tmp_path_factory.mktemp("explorer") / "run"
    results = run_study(CONFIG, out, workers=1)
    return out, {r.key: r.explorer for r in results.runs}


@pytest.fixture(scope="module")
def study(recorded) -> Path:
    """The study as a version before the explorer wrote it: no explorer data in its records."""
    out, _ = recorded
    results = load_results(out)
    for r in results.runs:
        r.explorer = None
        write_json_atomic(record_paths(out, r.key)[0], r.to_dict())
    write_results(out, results)
    return out


@pytest.fixture(scope="module")
def explored(study, tmp_path_factory) -> Path:
    """A copy of the study after ``shiftlab report RUN --explorer``."""
    out = tmp_path_factory.mktemp("explored") / "run"
    shutil.copytree(study, out)
    assert main(["report", str(out), "--explorer"]) == 0
    return out


def test_explorer_from_checkpoints_reproduces_the_study_measurements(study, explored):
    """With n_eval = the explorer's 16 images, the explorer's classes at the study's shifts give
    exactly the study's accuracy and agreement at every shift (its profile)."""
    for r in load_results(explored).runs:
        ex = r.explorer
        assert ex is not None and ex.radius == 10 and ex.canvas_shape == [EXPLORER_IMAGES, 1, 48, 48]
        classes, labels = ex.class_table(), np.asarray(ex.labels)
        column = {tuple(p): j for j, p in enumerate(ex.positions().tolist())}
        cols = [column[tuple(s)] for s in r.profile.shifts]
        centre = classes[:, column[(0, 0)]]
        assert (classes[:, cols] == labels[:, None]).mean(axis=0).tolist() == r.profile.accuracy
        assert (classes[:, cols] == centre[:, None]).mean(axis=0).tolist() == r.profile.agreement
        assert ex.canvases().max() == 255  # MNIST digits: white strokes, 8-bit pixels kept exactly


def test_a_study_records_what_its_checkpoints_give(recorded, explored):
    _, in_study = recorded
    assert all(ex is not None for ex in in_study.values())  # seed 0 at the study's width: shown, so recorded
    assert in_study == {r.key: r.explorer for r in load_results(explored).runs}


def test_explorer_is_saved_in_the_records_and_results_and_nothing_else_changes(study, explored):
    before, after = (json.loads((run / "results.json").read_text()) for run in (study, explored))
    for run_before, run_after in zip(before["runs"], after["runs"], strict=True):
        record = json.loads((explored / "runs" / f"{run_after['key']}.json").read_text())
        assert record == run_after  # the record on disk and results.json agree
        assert run_after.pop("explorer") is not None and run_before.pop("explorer") is None
        assert run_after == run_before
    assert after == before  # config, meta, analysis unchanged
    page = (explored / "report.html").read_text(encoding="utf-8")
    assert 'id="xp-data"' in page and "<script>" in page and "http://" not in page


def test_a_second_pass_computes_nothing_and_a_running_study_is_respected(explored):
    done = add_explorer(explored)
    assert done.computed == [] and len(done.present) == 2
    with run_dir_lock(explored), pytest.raises(RunDirLocked, match="in use by a running study"):
        add_explorer(explored)


def test_the_cli_refuses_explorer_with_verdict_only_and_builds_a_run_without_checkpoints(study, tmp_path, capsys):
    assert main(["report", str(study), "--explorer", "--verdict-only"]) == 2
    assert "--verdict-only writes nothing" in capsys.readouterr().err
    bare = tmp_path / "bare"  # e.g. published results: no checkpoints
    shutil.copytree(study, bare, ignore=shutil.ignore_patterns("checkpoints"))
    assert main(["report", str(bare), "--explorer"]) == 0
    out = capsys.readouterr().out
    assert "shift explorer: computed 0 runs" in out and "2 runs have no checkpoint" in out
    page = (bare / "report.html").read_text(encoding="utf-8")
    assert "shiftlab report RUN_DIR --explorer" in page and "<script" not in page
    assert load_results(bare).to_dict() == load_results(study).to_dict()  # nothing was written


# --- the page in a real browser -----------------------------------------------------------------
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (the browser test)")
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMEDRIVER).is_file() and Path(CHROMIUM).is_file()):
        pytest.skip("apt-get install chromium chromium-driver (the browser test)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1300",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"):  # nothing can go out
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # no Selenium Manager download
    yield driver
    driver.quit()


def _wait(condition, seconds: float = 10.0):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_the_explorer_shows_the_values_of_results_json_in_chromium(explored, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    results = load_results(explored)
    run = next(r for r in results.runs if r.model == "strided_gap")
    ex = run.explorer
    classes, conf = ex.class_table(), np.rint(ex.probability_table() * 255).astype(int)
    column = {tuple(p): j for j, p in enumerate(ex.positions().tolist())}
    right = column[(0, 1)]
    # an image whose stored prediction at (0, 1) differs from (0, 0), so the display must change
    image = next(i for i in range(ex.n_images)
                 if (classes[i, 220], conf[i, 220]) != (classes[i, right], conf[i, right]))

    def shown(i: int, j: int) -> tuple[str, str]:
        return results.meta.classes[classes[i, j]], f"{conf[i, j] / 255:.3f}"

    browser.get((explored / "report.html").as_uri())
    root = browser.find_element(By.ID, "xp")
    _wait(lambda: root.get_attribute("data-ready") == "true")
    for box in browser.find_elements(By.CSS_SELECTOR, 'input[name="xp-model"]'):  # choose strided_gap alone
        if box.is_selected() != (box.get_attribute("value") == "strided_gap"):
            box.click()
    Select(browser.find_element(By.ID, "xp-image")).select_by_value(str(image))
    panels = browser.find_elements(By.CSS_SELECTOR, ".xp-panel")
    assert [p.get_attribute("data-model") for p in panels] == ["strided_gap"]

    def display() -> tuple[str, str, str]:
        panel = browser.find_element(By.CSS_SELECTOR, '.xp-panel[data-model="strided_gap"]')
        return (browser.find_element(By.ID, "xp-position").text, panel.find_element(By.CLASS_NAME, "xp-class").text,
                panel.find_element(By.CLASS_NAME, "xp-prob").text)

    position, *prediction = display()
    assert position == "position (dy, dx) = (0, 0) is a multiple of S = 8" and tuple(prediction) == shown(image, 220)
    canvas = browser.find_element(By.ID, "xp-canvas")
    canvas.send_keys(Keys.ARROW_RIGHT)  # one pixel to the right
    assert browser.switch_to.active_element == canvas
    position, *prediction = display()
    assert position == "position (dy, dx) = (0, 1) is not a multiple of S = 8"
    assert tuple(prediction) == shown(image, right) != shown(image, 220)
    assert "Position (0, 1), not a multiple of S = 8" in browser.find_element(By.ID, "xp-status").get_attribute(
        "textContent")  # the live region a screen reader announces
    canvas.send_keys(Keys.HOME, Keys.SHIFT + Keys.ARROW_DOWN)  # Shift+arrow: one stride
    position, *prediction = display()
    assert position == "position (dy, dx) = (8, 0) is a multiple of S = 8"
    assert tuple(prediction) == shown(image, column[(8, 0)])
    assert browser.find_element(By.ID, "xp-dy").get_attribute("value") == "8"

    canvas.send_keys(Keys.HOME)
    ActionChains(browser).drag_and_drop_by_offset(canvas, 18, -12).perform()  # 6 screen px per canvas px
    position, *prediction = display()
    assert position == "position (dy, dx) = (-2, 3) is not a multiple of S = 8"
    assert tuple(prediction) == shown(image, column[(-2, 3)])
    browser.find_element(By.CSS_SELECTOR, 'input[name="xp-model"][value="blurstrided_gap"]').click()
    canvas.send_keys(Keys.HOME, Keys.ARROW_RIGHT)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".xp-panel")) == 2
    shot = ARTIFACTS / "explorer.png"  # the FCN and its anti-aliased twin, one pixel off centre
    shot.parent.mkdir(parents=True, exist_ok=True)
    section = browser.find_element(By.ID, "explorer")
    browser.execute_script("arguments[0].scrollIntoView()", section)
    section.screenshot(str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    requests = [json.loads(e["message"])["message"] for e in browser.get_log("performance")]
    urls = {m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"}
    assert urls and all(u == (explored / "report.html").as_uri() or u.startswith("data:") for u in urls), urls
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
