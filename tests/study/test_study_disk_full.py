"""A full disk in the middle of a study (``docs/reliability.md``): ``shiftlab study`` stops with
one line, leaves no temporary file, and ``--resume`` on a disk with room again gives the numbers
of an uninterrupted study."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shiftlab.study.results import load_results

ARGS = ["--data", "digits", "--models", "strided_gap", "--conditions", "centred", "--seeds", "2", "--width", "4",
        "--max-epochs", "2", "--n-eval", "16", "--workers", "1", "--no-report"]


def study(out, *extra, preexec_fn=None):
    return subprocess.run([sys.executable, "-m", "shiftlab", "study", *ARGS, "--out", str(out), *extra],
                          capture_output=True, text=True, preexec_fn=preexec_fn, timeout=600)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    done = study(out)
    assert done.returncode == 0, done.stderr
    return load_results(out).measurements()


def test_a_full_disk_stops_the_study_with_one_line_and_resume_finishes_it(tmp_path, full_disk, reference):
    out = tmp_path / "run"
    stopped = study(out, preexec_fn=full_disk(20_000))  # the first checkpoint (40 KB at width 4) does not fit
    lines = [line for line in stopped.stderr.splitlines() if line.strip()]
    assert stopped.returncode == 2, stopped.stderr
    assert lines[-1].startswith("shiftlab study: error: ") and "File too large" in lines[-1], lines
    assert not list(out.rglob("*.tmp"))
    resumed = study(out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert load_results(out).measurements() == reference
