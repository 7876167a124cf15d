"""Every published report reads as a careful reader checks it: each outcome label printed beside an
interval (``+0.04 [95% CI +0.01, +0.08] (more, size unresolved)``, ``less, by an unresolved amount,
-0.030 [-0.045, -0.017]``, a table's difference and decision cells) agrees with the printed bounds
against the margin 0.02 (``docs/definitions.md``, "Intervals"). The pages under ``docs/results/`` and the
segmentation study's report are read as text; the scan is checked on constructed sentences first."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

MARGIN = 0.02
RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
_NUM = r"[+\-−]?\d+(?:\.\d+)?"
_LABEL = (r"(more, size unresolved|less, size unresolved|more \(by an unresolved amount\)|"
          r"less \(by an unresolved amount\)|about the same|inconclusive|more|less)")
#: ``d [95% CI lo, hi] (label)`` and ``label, [by an unresolved amount,] d [lo, hi]``
_AFTER = re.compile(rf"({_NUM}) \[(?:95% CI )?({_NUM}), ({_NUM})\]\)?[;,]? \(?{_LABEL}")
_BEFORE = re.compile(rf"{_LABEL}(, by an unresolved amount)?,? ({_NUM}) \[(?:95% CI )?({_NUM}), ({_NUM})\]")


def page_text(page: str) -> str:
    """The visible text of an HTML page, whitespace collapsed (scripts, styles, images dropped)."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def labelled_intervals(text: str) -> list[tuple[str, float, float, str]]:
    """``(label, low, high, context)`` of every outcome label printed beside an interval."""
    def number(value: str) -> float:
        return float(value.replace("−", "-"))

    found = []
    for match in _AFTER.finditer(text):
        _, low, high, label = match.groups()
        found.append((label, number(low), number(high), match.group(0)))
    for match in _BEFORE.finditer(text):
        label, unresolved, _, low, high = match.groups()
        found.append((label + (", size unresolved" if unresolved else ""), number(low), number(high), match.group(0)))
    return found


def reads_as(label: str, low: float, high: float) -> bool:
    """Whether printed bounds allow ``label`` (a bound on the margin or on 0 counts as reaching it:
    the printed digits are rounded)."""
    unresolved = "unresolved" in label
    if label.startswith("more"):
        return low >= 0 and high >= MARGIN if unresolved else low >= MARGIN
    if label.startswith("less"):
        return high <= 0 and low <= -MARGIN if unresolved else high <= -MARGIN
    if label == "about the same":
        return -MARGIN <= low and high <= MARGIN
    return low <= 0 <= high and (low <= -MARGIN or high >= MARGIN)  # inconclusive


def contradictions(text: str) -> list[str]:
    return [context for label, low, high, context in labelled_intervals(text) if not reads_as(label, low, high)]


def test_the_scan_finds_each_form_and_flags_a_label_its_bounds_contradict():
    good = ("consistency 0.525 vs 0.353, difference +0.17 [95% CI +0.14, +0.20] (more); "
            "Test accuracy 0.950 (less, by an unresolved amount, -0.030 [-0.045, -0.017]); "
            "object agreement more, size unresolved, +0.04 [95% CI +0.01, +0.08]; "
            "+0.003 [-0.004, +0.009] about the same; -0.03 [95% CI -0.09, +0.01] inconclusive")
    assert [found[0] for found in labelled_intervals(good)] == [
        "more", "about the same", "inconclusive", "less, size unresolved", "more, size unresolved"]
    assert contradictions(good) == []
    bad = ("-0.037 [95% CI -0.054, -0.019] (inconclusive); +0.038 [+0.018, +0.057] (more); "
           "+0.01 [95% CI -0.01, +0.03] about the same; less, -0.03 [-0.045, -0.017]")
    assert len(contradictions(bad)) == 4


@pytest.mark.parametrize("page", sorted(RESULTS.rglob("report.html")), ids=lambda p: str(p.relative_to(RESULTS)))
def test_no_published_label_contradicts_its_interval(page):
    text = page_text(page.read_text(encoding="utf-8"))
    assert len(labelled_intervals(text)) >= 20  # the page states its comparisons
    assert contradictions(text) == []


def test_the_segmentation_report_labels_agree_with_their_intervals(seg_study):
    out, _, _ = seg_study
    text = page_text((out / "report.html").read_text(encoding="utf-8"))
    assert labelled_intervals(text)
    assert contradictions(text) == []
