"""Open the segmentation study's report in headless Chromium: every image decodes, no console
errors, no network, no horizontal overflow; save a screenshot to
``test-artifacts/segmentation_report.png``. Skipped when no Chromium is installed (CI installs it)."""

from __future__ import annotations

import pytest

from chromium_probe import ARTIFACTS, CHROMIUM, probe_page, screenshot

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium); CI installs it"
)


def test_segmentation_report_renders_in_chromium(seg_study, tmp_path):
    out, _, _ = seg_study
    page = out / "report.html"
    check = probe_page(page, tmp_path)
    assert check["errors"] == []
    assert len(check["images"]) == 2  # agreement by shift, training loss
    for img in check["images"]:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
        assert 0 < img["shown"] <= check["innerWidth"]
    assert check["resources"] == []
    assert check["scrollWidth"] <= check["innerWidth"]
    data = screenshot(page, ARTIFACTS / "segmentation_report.png", tmp_path)
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
