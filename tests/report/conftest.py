"""Fixtures for the report tests: synthetic study results built through the real analysis
(:mod:`report_results`), written to a run directory, and the report built from it."""

from __future__ import annotations

import pytest
from report_results import full_cells, make_results

from shiftlab.study.results import StudyResults, write_results


@pytest.fixture(scope="session")
def full_results() -> StudyResults:
    cells = full_cells()
    sweep = {(m, 4): cells[(m, "centred")] for m in ("strided_gap", "maxpool_fc", "maxpool_gap", "blurstrided_gap")}
    return make_results(cells, n_boot=100, n_images=120, seeds=2, capacity=sweep)


@pytest.fixture(scope="session")
def residue_results() -> StudyResults:
    """:func:`full_results`'s cells without the distance-matched signature (the second design)."""
    return make_results(full_cells(), n_boot=100, n_images=120, seeds=2, matched=False)


@pytest.fixture
def run_dir(tmp_path, full_results):
    out = tmp_path / "run"
    out.mkdir()
    write_results(out, full_results)
    return out


@pytest.fixture
def built_report(run_dir):
    from shiftlab.report import build_report

    return build_report(run_dir)
