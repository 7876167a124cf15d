"""The opening answer: both questions for each FCN, computed from the matched pairs (every branch)."""

from __future__ import annotations

import re

import pytest
from report_results import Cell, make_results

from shiftlab.report.answer import _q1, _q2, answer_points, why_points
from shiftlab.report.answer_text import q1_line, q2_line, why_line
from shiftlab.stats import Comparison, Interval


def comparison(low: float, high: float) -> Comparison:
    return Comparison("x|centred", "a|centred", "b|centred", "consistency", Interval((low + high) / 2, low, high), 0.02)


@pytest.mark.parametrize(("intervals", "expected"), [
    ([(-0.6, -0.5), (-0.1, -0.05)], "no"),            # less than both max-pool networks
    ([(-0.6, -0.5), (0.25, 0.35)], "partly"),          # less than the same-head one, more than the classic CNN
    ([(-0.6, -0.5), (-0.05, 0.08)], "partly"),         # ... or undecided against it
    ([(-0.01, 0.01), (0.2, 0.3)], "yes"),              # as invariant as one, more than the other
    ([(-0.05, 0.08), (0.2, 0.3)], "inconclusive"),
    ([(-0.04, -0.01), (0.0, 0.01)], "partly"),         # less by an unresolved amount counts as less
    ([], "not measured"),
])
def test_q1_from_the_two_consistency_outcomes(intervals, expected):
    assert _q1([comparison(lo, hi).outcome for lo, hi in intervals]) == expected


@pytest.mark.parametrize(("interval", "under", "expected"), [
    ((-0.01, 0.015), (), "yes"), ((0.03, 0.05), (), "better"), ((-0.08, -0.05), (), "no"),
    ((-0.054, -0.019), (), "no"), ((0.03, 0.05), ("strided_gap",), "under-fits"), ((-0.03, 0.04), (), "inconclusive"),
])
def test_q2_from_the_test_accuracy_outcome_and_convergence(interval, under, expected):
    assert _q2(comparison(*interval), under) == expected
    assert _q2(None, under) == "not measured"


def _results(strided_acc: float, allconv_acc: float, allconv_converged: bool = True):
    cells = {("strided_gap", "centred"): Cell(0.36, strided_acc, 0.99, 0.60),
             ("allconv_gap", "centred"): Cell(0.65, allconv_acc, 0.98, 0.80, converged=allconv_converged,
                                              train_accuracy=0.99 if allconv_converged else 0.9),
             ("maxpool_fc", "centred"): Cell(0.35, 0.96, 0.15, 0.5),
             ("maxpool_gap", "centred"): Cell(0.94, 0.96, 0.98, 0.96),
             ("blurstrided_gap", "centred"): Cell(0.99, 0.96, 0.98, 0.98)}
    return make_results(cells, n_images=2000, n_boot=200)  # enough images to resolve "about the same"


def test_the_premise_fails_for_one_fcn_and_holds_for_the_other():
    results = _results(strided_acc=0.86, allconv_acc=0.96)
    strided, allconv = answer_points(results, "centred")
    assert (strided.model, strided.q1, strided.q2) == ("strided_gap", "partly", "no")
    assert (allconv.model, allconv.q1, allconv.q2) == ("allconv_gap", "partly", "yes")
    assert strided.vs_same_head.outcome == "less" and strided.accuracy.outcome == "less"
    assert re.match(r"Strided-CNN FCN \(strided_gap\): Partly\. Consistency 0\.360 against the max-pool GAP network's "
                    r"0\.9\d\d \(less, -0\.5\d \[-0\.5\d, -0\.5\d\]\) and the classic CNN's 0\.350 \(about the same, "
                    r"\+0\.01 \[\+0\.0\d, \+0\.0\d\]\)\.$", q1_line(strided))
    assert re.match(r"Strided-CNN FCN: Not as well\. Test accuracy 0\.860 against the classic CNN's 0\.960 \(less, -0\.10 ",
                    q2_line(strided))
    assert re.match(r"All-CNN FCN: As well\. Test accuracy 0\.960 against the classic CNN's 0\.960 \(about the same, "
                    r"[-+]0\.00 \[-0\.0\d, \+0\.0\d\]\); over the shifts 0\.\d{3} vs 0\.\d{3} \(about the same\), "
                    r"worst case 0\.\d{3} vs 0\.\d{3} \(\w", q2_line(allconv))


def test_an_under_fitting_fcn_is_flagged_not_compared():
    allconv = answer_points(_results(0.86, 0.90, allconv_converged=False), "centred")[1]
    assert allconv.q2 == "under-fits" and allconv.under_fitting == ("allconv_gap",)
    assert q2_line(allconv) == "All-CNN FCN: Not compared (under-fits). allconv_gap ends at training accuracy 0.900."


def test_why_reads_the_distance_matched_signature():
    results = _results(0.86, 0.96)
    signatures = {s.model: s for s in why_points(results, "centred")}
    assert list(signatures) == ["strided_gap", "allconv_gap", "maxpool_gap", "blurstrided_gap"]  # no learned_gap run
    assert signatures["strided_gap"].outcome == "more" and signatures["blurstrided_gap"].outcome == "about the same"
    line = why_line(list(signatures.values()), 8)
    assert re.match(r"Why: agreement at the multiples of the stride minus between them, both at 8 px \(aliasing\): "
                    r"the Strided-CNN FCN \+0\.3\d \[\+0\.3\d, \+0\.[34]\d\] "
                    r"\(aliasing\); the All-CNN FCN \+0\.1\d", line)
    assert re.search(r"the anti-aliased FCN [-+]0\.00 \[[-+]0\.0\d, [-+]0\.0\d\] \(none\)\.$", line)
    assert answer_points(results, "augmented") == [] and why_points(results, "augmented") == []
