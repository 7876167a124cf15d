"""Open the report in headless Chromium: every image decodes, no console errors, no network,
no horizontal overflow; save a screenshot to ``test-artifacts/report.png``.

How: a copy of the page gets a small script at the top of ``<head>`` that records errors
(``window.onerror``, failed resource loads, ``console.error``) and, on ``load``, writes a JSON
summary (each image's natural size, the errors, the resources fetched, the page width) into a
``data-check`` attribute of ``<body>``; ``chromium --headless --dump-dom`` prints the DOM after
the load and the test parses the attribute back. Standard library only (no DevTools client).
Skipped when no Chromium is installed (CI installs the Debian ``chromium`` package).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shiftlab.report.figures import FIGURES

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
WINDOW = (1200, 3000)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium); CI installs it"
)

_PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    errors.push(t && t !== window && (t.src || t.href) ? 'failed to load ' + String(t.src || t.href).slice(0, 80)
                                                       : String(e.message));
  }, true);
  var ce = console.error;
  console.error = function () { errors.push(Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); };
  window.addEventListener('load', function () {
    var imgs = Array.prototype.map.call(document.images, function (i) {
      return {w: i.naturalWidth, h: i.naturalHeight, complete: i.complete, shown: i.getBoundingClientRect().width};
    });
    var res = performance.getEntriesByType('resource').map(function (r) { return r.name.slice(0, 80); });
    document.body.setAttribute('data-check', JSON.stringify({
      images: imgs, errors: errors, resources: res,
      scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth}));
  });
})();
</script>"""


def _flags(user_data: Path) -> list[str]:
    return [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
        f"--user-data-dir={user_data}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_report_renders_in_chromium(built_report, tmp_path):
    probed = tmp_path / "probed.html"
    page = built_report.read_text(encoding="utf-8")
    probed.write_text(page.replace("<head>", "<head>\n" + _PROBE, 1), encoding="utf-8")
    proc = _run(_flags(tmp_path / "profile-dom") + ["--dump-dom", "--virtual-time-budget=5000", probed.as_uri()])
    match = re.search(r'data-check="([^"]*)"', proc.stdout)
    assert match, f"no summary in the dumped DOM (exit {proc.returncode}); stderr: {proc.stderr[-2000:]}"
    check = json.loads(html.unescape(match.group(1)))

    assert check["errors"] == []
    assert len(check["images"]) == len(FIGURES)
    for img in check["images"]:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img  # every embedded PNG decodes
        assert 0 < img["shown"] <= check["innerWidth"]
    assert check["resources"] == []  # nothing fetched: no network, no files beside the page
    assert check["scrollWidth"] <= check["innerWidth"]  # no horizontal overflow at 1200 px

    # the screenshot artifact (of the page as shipped, without the probe)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = _run(_flags(tmp_path / "profile-shot") + [f"--screenshot={shot}", built_report.as_uri()])
    assert shot.is_file(), f"no screenshot (exit {proc.returncode}); stderr: {proc.stderr[-2000:]}"
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == WINDOW
        colours = im.convert("L").resize((60, 150)).getextrema()
    assert colours[1] - colours[0] > 100  # not a blank page
