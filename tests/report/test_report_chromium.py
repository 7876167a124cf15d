"""Open the report in headless Chromium: every image decodes, no console errors, no network, no
horizontal overflow; save a screenshot to ``test-artifacts/report.png``. See
``tests/chromium_probe.py``. Skipped when no Chromium is installed (CI installs it)."""

from __future__ import annotations

import pytest

from chromium_probe import ARTIFACTS, CHROMIUM, WINDOW, probe_page, screenshot

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium); CI installs it"
)


def test_report_renders_in_chromium(built_report, run_dir, tmp_path):
    check = probe_page(built_report, tmp_path)

    assert check["errors"] == []
    assert len(check["images"]) == len(list((run_dir / "figures").glob("*.png")))
    for img in check["images"]:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img  # every embedded PNG decodes
        assert 0 < img["shown"] <= check["innerWidth"]
    assert check["resources"] == []  # nothing fetched: no network, no files beside the page
    assert check["scrollWidth"] <= check["innerWidth"]  # no horizontal overflow at 1200 px

    shot = ARTIFACTS / "report.png"
    data = screenshot(built_report, shot, tmp_path)
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == WINDOW
        histogram = im.convert("L").histogram()
    assert sum(histogram[:100]) > 0.01 * WINDOW[0] * WINDOW[1]  # not a blank page: dark text and lines
