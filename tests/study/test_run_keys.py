"""Run keys read from a results file are validated (issue 21, case 9): a key is a file name in the
run directory, ``MODEL__CONDITION[__wW]__seedN`` of the run's own fields. A key that is an
absolute path, holds ``..`` or a separator, or names another run is refused when the results are
read, so ``shiftlab report RUN --explorer all`` never loads another study's checkpoint nor writes
into another directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shiftlab.cli.main import main
from shiftlab.study.records import RecordError
from shiftlab.study.results import load_results

#: A published study's results (plain JSON), wherever docs/results keeps it.
PUBLISHED = min((Path(__file__).resolve().parents[2] / "docs" / "results").rglob("results.json"),
                key=lambda p: p.stat().st_size)


def _with_key(tmp_path: Path, key: str) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    data = json.loads(PUBLISHED.read_text())
    data["runs"][0]["key"] = key
    (run / "results.json").write_text(json.dumps(data))
    return run


@pytest.mark.parametrize("bad", ["/ABS/other__centred__seed0", "../other/maxpool_fc__centred__seed0",
                                 "maxpool_fc__centred__seed0/../../x", "strided_gap__centred__seed9"])
def test_a_run_key_that_leaves_the_run_directory_or_names_another_run_is_refused(tmp_path, capsys, bad):
    other = tmp_path / "other"  # another study's run directory
    (other / "checkpoints").mkdir(parents=True)
    before = sorted(p.name for p in other.rglob("*"))
    run = _with_key(tmp_path, bad.replace("/ABS", str(other)))
    with pytest.raises(RecordError, match=r"is not a run key of this run \(expected "):
        load_results(run)
    assert main(["report", str(run), "--explorer", "all"]) == 2
    err = capsys.readouterr().err
    assert "is not a run key of this run" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in other.rglob("*")) == before and not (run / "report.html").exists()


def test_the_published_keys_read_back():
    assert len(load_results(PUBLISHED.parent).runs) > 0
