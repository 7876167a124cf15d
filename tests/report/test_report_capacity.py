"""The capacity sweep: the key matched pairs at every width, analysed apart from the main cells,
rendered as a point per pair, a paragraph of the answer and a table of the report."""

from __future__ import annotations

import pytest
from report_results import Cell, make_results

from shiftlab.report import verdict
from shiftlab.report.tables import capacity_table

MAIN = {("strided_gap", "centred"): Cell(consistency=0.40), ("maxpool_fc", "centred"): Cell(consistency=0.45),
        ("maxpool_gap", "centred"): Cell(consistency=0.95)}


def _sweep(fcn_at_32: float) -> dict:
    return {("strided_gap", 4): Cell(consistency=0.35), ("maxpool_fc", 4): Cell(consistency=0.45),
            ("maxpool_gap", 4): Cell(consistency=0.90),
            ("strided_gap", 32): Cell(consistency=fcn_at_32), ("maxpool_fc", 32): Cell(consistency=0.45),
            ("maxpool_gap", 32): Cell(consistency=0.97, converged=False, train_accuracy=0.9)}


def test_sweep_cells_stay_out_of_the_main_analysis_and_pair_at_every_width():
    results = make_results(MAIN, capacity=_sweep(0.30), n_images=300)
    a = results.analysis
    assert {c.width for c in a.cells} == {8}  # the main cells are the main width only
    assert a.cell("strided_gap", "centred").metrics["consistency"].estimate == pytest.approx(0.40, abs=1e-9)
    assert a.widths == [4, 8, 32]
    assert a.capacity_cell("strided_gap", 32).metrics["consistency"].estimate == pytest.approx(0.30, abs=1e-9)
    assert a.capacity_cell("strided_gap", 32).params == 6330 * 4
    for width in (4, 8, 32):
        c = a.capacity_comparison("fcn_vs_maxpool_gap", width, "consistency")
        assert c is not None and c.outcome == "less" and c.a == f"strided_gap|centred|w{width}"
    # only the main width's pairs are in the main comparisons
    assert all("|w" not in c.label for c in a.comparisons)


def test_an_outcome_shared_by_every_width_is_stated_once_with_each_interval():
    v = verdict(make_results(MAIN, capacity=_sweep(0.30), n_images=300))
    p = v.point("capacity:fcn_vs_maxpool_gap")
    assert p.outcome == "less" and [r.width for r in p.rows] == [4, 8, 32]
    assert ("At every width (4, 8, 32), the Strided-CNN FCN (strided_gap) is less translation invariant than the max-pool"
            in v.answer)
    for r in p.rows:
        assert f"width {r.width} (" in v.answer
    # a model that did not converge is not compared on performance at that width
    assert p.rows[2].performance == "under-fits" and p.rows[0].performance != "under-fits"


def test_an_outcome_that_changes_with_width_says_so():
    v = verdict(make_results(MAIN, capacity=_sweep(0.60), n_images=300))
    p = v.point("capacity:fcn_vs_classic")
    outcomes = [r.consistency.outcome for r in p.rows]
    assert outcomes == ["less", "less", "more"]
    assert p.outcome == "depends on width"
    assert "depends on the width (4, 8, 32)" in v.answer


def test_without_a_sweep_there_is_no_capacity_point_paragraph_or_table():
    v = verdict(make_results(MAIN))
    assert not [p for p in v.points if p.id.startswith("capacity:")]
    assert "Capacity" not in v.answer and capacity_table(v) == ""


def test_capacity_table_and_results_round_trip(tmp_path):
    from shiftlab.study.results import load_results, write_results

    results = make_results(MAIN, capacity=_sweep(0.30), n_images=120, seeds=2)
    html = capacity_table(verdict(results))
    # header + 2 pairs (the anti-aliased FCN is not in this sweep) x 3 widths x 2 metrics
    assert html.count("<tr>") == 1 + 2 * 3 * 2 and "width 32 (25,320 / 70,120 params)" in html
    write_results(tmp_path, results)
    back = load_results(tmp_path)
    assert back.analysis.to_dict() == results.analysis.to_dict()
    assert len(back.main_runs) == 3 * 2 and len(back.runs) == 3 * 2 + 6 * 2
    assert "width" in (tmp_path / "results.csv").read_text().splitlines()[0]
