"""Every outcome of the decision rule reads in the report as its interval says
(``docs/definitions.md``, "Intervals"): the sentence of a matched pair, of a performance pair, of
the capacity sweep, of the position probe and of the lead, for each of the six outcomes, each
printed with bounds whose digits show their side of 0 and of the margin."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from report_results import Cell, make_results

from shiftlab.report import verdict
from shiftlab.report.claims import ClaimResult
from shiftlab.report.fmt import fmt_diff
from shiftlab.report.prose import _lead, claim_text, effect_text, pair_text, performance_text
from shiftlab.report.tables import _badge
from shiftlab.stats import OUTCOMES, Comparison, Effect, Interval, decide

MARGIN = 0.02
UNRESOLVED = "by an amount that may be smaller or larger than the margin of 0.02"
#: One constructed interval per outcome; the printed interval each is written with.
CASES = {
    "more": (Interval(0.05, 0.03, 0.07), "+0.05 [95% CI +0.03, +0.07]"),
    "less": (Interval(-0.05, -0.07, -0.03), "-0.05 [95% CI -0.07, -0.03]"),
    "about the same": (Interval(0.01, 0.004, 0.016), "+0.010 [95% CI +0.004, +0.016]"),  # excludes 0: still equivalent
    "more, size unresolved": (Interval(0.038, 0.018, 0.057), "+0.038 [95% CI +0.018, +0.057]"),
    "less, size unresolved": (Interval(-0.037, -0.054, -0.019), "-0.037 [95% CI -0.054, -0.019]"),
    "inconclusive": (Interval(0.01, -0.01, 0.03), "+0.01 [95% CI -0.01, +0.03]"),
}
A, B = "the Strided-CNN FCN (strided_gap)", "the classic max-pool CNN (maxpool_fc)"
PAIR = {
    "more": f"The Strided-CNN FCN (strided_gap) is more translation invariant than {B}: consistency ",
    "less": f"The Strided-CNN FCN (strided_gap) is less translation invariant than {B}: consistency ",
    "about the same": f"The Strided-CNN FCN (strided_gap) is about as translation invariant as {B}: consistency ",
    "more, size unresolved":
        f"The Strided-CNN FCN (strided_gap) is more translation invariant than {B}, {UNRESOLVED}: consistency ",
    "less, size unresolved":
        f"The Strided-CNN FCN (strided_gap) is less translation invariant than {B}, {UNRESOLVED}: consistency ",
    "inconclusive": f"Whether {A} is more or less translation invariant than {B} is inconclusive: consistency ",
}
WHERE = "(trained on centred objects)"
PERFORMANCE = {
    "more": f"The Strided-CNN FCN (strided_gap) is more accurate than {B} {WHERE}: test accuracy ",
    "less": f"The Strided-CNN FCN (strided_gap) is less accurate than {B} {WHERE}: test accuracy ",
    "about the same": f"The Strided-CNN FCN (strided_gap) performs about as well as {B} {WHERE}: test accuracy ",
    "more, size unresolved": f"The Strided-CNN FCN (strided_gap) is more accurate than {B} {WHERE}, {UNRESOLVED}: test accuracy ",
    "less, size unresolved": f"The Strided-CNN FCN (strided_gap) is less accurate than {B} {WHERE}, {UNRESOLVED}: test accuracy ",
    "inconclusive": f"Whether {A} performs better or worse than {B} {WHERE} is inconclusive: test accuracy ",
}


def test_the_cases_cover_every_outcome():
    assert set(CASES) == set(OUTCOMES)
    assert all(decide(iv, MARGIN) == o for o, (iv, _) in CASES.items())


@pytest.fixture(scope="module")
def points():
    v = verdict(make_results({("strided_gap", "centred"): Cell(consistency=0.30),
                              ("maxpool_fc", "centred"): Cell(consistency=0.21)}, n_images=60, seeds=2))
    return v.point("fcn_vs_classic", "centred"), v.point("performance:fcn_vs_classic", "centred")


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_a_matched_pair_sentence_says_what_its_interval_says(points, outcome):
    iv, printed = CASES[outcome]
    p = points[0]
    c = dataclasses.replace(p.consistency, interval=iv, outcome=outcome)
    text = pair_text(dataclasses.replace(p, consistency=c, outcome=outcome))
    assert text.startswith(PAIR[outcome])
    assert f"difference {printed}" in text
    assert ("its interval holds 0 and reaches the margin of 0.02" in text) == (outcome == "inconclusive")
    assert (UNRESOLVED in text) == outcome.endswith("size unresolved")


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_a_performance_sentence_says_what_its_interval_says(points, outcome):
    iv, printed = CASES[outcome]
    p = points[1]
    acc = Comparison(p.accuracy.label, p.accuracy.a, p.accuracy.b, "test_accuracy", iv, MARGIN)
    text = performance_text(dataclasses.replace(p, accuracy=acc, outcome=acc.outcome, shifted=None, worst_case=None))
    assert text.startswith(PERFORMANCE[outcome])
    assert f"difference {printed}" in text
    assert ("inconclusive" in text) == (outcome == "inconclusive")
    assert "worse" not in text.replace("better or worse", "")


def test_a_performance_sentence_gives_the_shifted_and_worst_case_accuracy_and_the_sizes(points):
    p = points[1]
    shifted = Comparison(p.accuracy.label, p.accuracy.a, p.accuracy.b, "accuracy", CASES["less"][0], MARGIN)
    worst = Comparison(p.accuracy.label, p.accuracy.a, p.accuracy.b, "worst_case", CASES["inconclusive"][0], MARGIN)
    text = performance_text(dataclasses.replace(p, shifted=shifted, worst_case=worst))
    assert f"; accuracy averaged over the shifts {_cell_value(p.a, 'accuracy')} vs {_cell_value(p.b, 'accuracy')}, " \
           f"difference {CASES['less'][1]} (less)" in text
    assert "; worst-case accuracy over the shifts" in text and f"difference {CASES['inconclusive'][1]} (inconclusive)" in text
    assert re.search(r"\(receptive field \d+ vs \d+ px, \d+\.\d M vs \d+\.\d M multiply-adds, "
                     r"[\d,]+ vs [\d,]+ parameters\)", text)


def _cell_value(cell, metric):
    return f"{cell.metrics[metric].estimate:.3f}"


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_an_effect_its_badge_and_the_probe_name_the_outcome(outcome):
    iv, printed = CASES[outcome]
    e = Effect("main", ("head",), (("gap", "fc"),), "consistency", iv)
    assert effect_text(e, outcome, MARGIN) == f"head gap vs fc: consistency {printed} ({outcome})"
    css = "-".join(re.findall(r"[a-z]+", outcome))
    assert _badge(outcome) == f'<span class="badge {css}">{outcome}</span>'
    from shiftlab.report.page import _CSS

    assert f".badge.{css}" in _CSS
    chance = Interval(0.5 + iv.estimate, 0.5 + iv.low, 0.5 + iv.high)
    probe = ClaimResult("C8", "partly", {}, {"aps_gap:probe": chance}, {"aps_gap:probe": outcome})
    text = claim_text(probe, MARGIN)
    words = {"more": "(above chance)", "less": "(below chance)", "about the same": "(at chance)",
             "more, size unresolved": "(above chance, by an amount that may be smaller or larger than the margin)",
             "less, size unresolved": "(below chance, by an amount that may be smaller or larger than the margin)",
             "inconclusive": "(inconclusive against chance)"}[outcome]
    assert words in text


def test_the_probe_prints_the_digits_that_show_a_bound_s_side_of_chance_plus_the_margin():
    probe = ClaimResult("C8", "partly", {}, {"aps_gap:probe": Interval(0.55, 0.519, 0.58)},
                        {"aps_gap:probe": "more, size unresolved"})
    assert "probe 0.550 [0.519, 0.580] (above chance, by an amount" in claim_text(probe, MARGIN)


def test_the_lead_answers_from_the_signs_it_can_trust(points):
    p = points[0]

    def at(outcome):
        iv = CASES[outcome][0]
        return dataclasses.replace(p, outcome=outcome, consistency=dataclasses.replace(p.consistency, interval=iv,
                                                                                       outcome=outcome))

    lead = _lead(at("more, size unresolved"), at("about the same"))
    assert lead.startswith("Yes: the Strided-CNN FCN is more translation invariant than the classic max-pool CNN (a) "
                           "(by an amount that may be smaller or larger than the margin) and about as translation invariant as")
    lead = _lead(at("less, size unresolved"), at("less, size unresolved"))
    assert lead.startswith("Not settled by this run: the Strided-CNN FCN is less translation invariant")
    assert _lead(at("less"), at("less, size unresolved")).startswith("Not in general")
    assert _lead(at("less"), at("less")).startswith("No:")


def test_a_capacity_sweep_less_at_every_width_but_past_the_margin_only_at_some_says_so(full_results):
    p = verdict(full_results).point("capacity:fcn_vs_classic")
    assert len(p.rows) == 2
    ivs = (CASES["less"][0], CASES["less, size unresolved"][0])
    rows = tuple(dataclasses.replace(r, consistency=Comparison("x", "a", "b", "consistency", iv, MARGIN))
                 for r, iv in zip(p.rows, ivs, strict=True))
    from shiftlab.report.prose import capacity_text

    text = capacity_text(dataclasses.replace(p, rows=rows, outcome="depends on width"))
    assert text.startswith(f"At every width (4, 8), {A} is less translation invariant than {B}, beyond the margin at "
                           f"some widths and {UNRESOLVED} at others: ")
    assert "consistency -0.037 [95% CI -0.054, -0.019] (less, size unresolved)" in text
    same = tuple(dataclasses.replace(r, consistency=Comparison("x", "a", "b", "consistency", ivs[1], MARGIN))
                 for r in p.rows)
    assert capacity_text(dataclasses.replace(p, rows=same, outcome="less, size unresolved")).startswith(
        f"At every width (4, 8), {A} is less translation invariant than {B}, {UNRESOLVED}: ")


def _printed_bounds(text: str) -> tuple[float, float]:
    lo, hi = re.search(r"CI ([-+][0-9.]+), ([-+][0-9.]+)\]", text).groups()
    return float(lo), float(hi)


def test_no_printed_interval_reads_as_another_outcome_than_its_own():
    """Read back from the text, the bounds decide as the interval does: near 0, near ±margin, anywhere."""
    rng = np.random.default_rng(0)
    edges = np.array([-MARGIN, 0.0, MARGIN])
    near = edges[rng.integers(0, 3, size=(4000, 2))] + rng.choice([-1, 1], size=(4000, 2)) * 10.0 ** rng.uniform(
        -7, -1.5, size=(4000, 2))
    anywhere = rng.uniform(-0.1, 0.1, size=(4000, 2))
    exact = edges[rng.integers(0, 3, size=(200, 2))]
    for lo, hi in np.sort(np.concatenate([near, anywhere, exact]), axis=1):
        iv = Interval(0.5 * (lo + hi), float(lo), float(hi))
        printed = Interval(0.0, *_printed_bounds(fmt_diff(iv, margin=MARGIN)))
        if any(0 < abs(b - e) < 1e-6 for b in (lo, hi) for e in edges):
            continue  # closer to an edge than the six digits printed at most show
        assert decide(printed, MARGIN) == decide(iv, MARGIN), (lo, hi, fmt_diff(iv, margin=MARGIN))
