"""Headless Chromium checks of a report page, shared by the report and study tests.

A copy of the page gets a small script at the top of ``<head>`` that records errors
(``window.onerror``, failed resource loads, ``console.error``) and, on ``load``, writes a JSON
summary (each image's natural size, the errors, the resources fetched, the page width) into a
``data-check`` attribute of ``<body>``; ``chromium --headless --dump-dom`` prints the DOM after
the load and :func:`probe_page` parses the attribute back. Standard library only.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"
WINDOW = (1200, 3000)


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = _find_chromium()

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




def probe_page(page: Path, tmp_path: Path) -> dict:
    """Load ``page`` (with the probe script added) in headless Chromium; return the probe's summary."""
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>\n" + _PROBE, 1), encoding="utf-8")
    proc = _run(_flags(tmp_path / "profile-dom") + ["--dump-dom", "--virtual-time-budget=5000", probed.as_uri()])
    match = re.search(r'data-check="([^"]*)"', proc.stdout)
    assert match, f"no summary in the dumped DOM (exit {proc.returncode}); stderr: {proc.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


def screenshot(page: Path, shot: Path, tmp_path: Path) -> bytes:
    """Write a ``WINDOW``-sized PNG screenshot of ``page`` to ``shot``; return its bytes."""
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.unlink(missing_ok=True)
    proc = _run(_flags(tmp_path / "profile-shot") + [f"--screenshot={shot}", page.as_uri()])
    assert shot.is_file(), f"no screenshot (exit {proc.returncode}); stderr: {proc.stderr[-2000:]}"
    return shot.read_bytes()
