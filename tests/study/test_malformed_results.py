"""A results file whose fields contradict each other is "not a valid results file", read as such
before any page is built (issue 21, case 17): short or empty ``meta.classes`` (were IndexError,
ZeroDivisionError), a NaN ``total_stride`` (a raw "cannot be interpreted as an integer"), a shift
profile whose lists differ in length (IndexError)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from shiftlab.cli.main import main
from shiftlab.study.records import RecordError
from shiftlab.study.results import load_results

#: A published study's results (plain JSON), wherever docs/results keeps it.
PUBLISHED = min((Path(__file__).resolve().parents[2] / "docs" / "results").rglob("results.json"),
                key=lambda p: p.stat().st_size)


def _short_classes(d: dict) -> str:
    d["meta"]["classes"] = d["meta"]["classes"][:2]
    return "but meta.classes lists 2 classes"


def _no_classes(d: dict) -> str:
    d["meta"]["classes"] = []
    return "meta.classes must list at least 2 class names"


def _nan_stride(d: dict) -> str:
    d["runs"][0]["total_stride"] = math.nan
    return "total_stride must be an int >= 1"


def _short_profile(d: dict) -> str:
    run = next(r for r in d["runs"] if r.get("profile"))
    run["profile"]["shifts"] = run["profile"]["shifts"][:2]
    return "the shift profile holds 2 shifts but"


@pytest.mark.parametrize("damage", [_short_classes, _no_classes, _nan_stride, _short_profile])
def test_fields_that_contradict_each_other_are_not_a_valid_results_file(tmp_path, capsys, damage):
    data = json.loads(PUBLISHED.read_text())
    bad = copy.deepcopy(data)
    why = damage(bad)
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(bad))
    with pytest.raises(RecordError, match=r"is not a valid (results file|run record)") as err:
        load_results(run)
    assert why in str(err.value), str(err.value)
    assert main(["report", str(run)]) == 2
    out = capsys.readouterr().err.strip().splitlines()
    assert len(out) == 1 and "is not a valid " in out[0] and why in out[0], out
    assert not (run / "report.html").exists()
