"""Decisions against a margin: the four outcomes (the third with a sign) on constructed intervals,
every branch with both signs, on the margin's edge and on 0's edge; compare() and Comparison."""

from __future__ import annotations

import numpy as np
import pytest

from shiftlab.stats import OUTCOMES, Comparison, Interval, PairedSample, compare, decide, difference, direction

M = 0.02  # the margin of the constructed intervals


@pytest.mark.parametrize(
    "low, high, outcome",
    [
        # beyond the margin
        (0.03, 0.09, "more"),
        (-0.09, -0.03, "less"),
        (0.0201, 0.05, "more"),  # just past +m
        (-0.05, -0.0201, "less"),  # just past -m
        # inside (-m, +m): equivalence, whether or not it holds 0
        (-0.015, 0.015, "about the same"),
        (0.005, 0.015, "about the same"),  # excludes 0, inside the margin
        (-0.015, -0.005, "about the same"),
        (-0.0199, 0.0199, "about the same"),  # just inside on both sides
        (0.0, 0.0199, "about the same"),  # on 0's edge, inside the margin
        # excludes 0 but reaches the margin: the direction, not the size
        (0.01, 0.05, "more, size unresolved"),  # straddles +m
        (-0.05, -0.01, "less, size unresolved"),  # straddles -m
        (0.018, 0.057, "more, size unresolved"),  # the review's blur vs FCN, +0.038 [+0.018, +0.057]
        (-0.054, -0.019, "less, size unresolved"),  # the review's FCN deficit, -0.037 [-0.054, -0.019]
        (0.02, 0.05, "more, size unresolved"),  # low == +m does not clear it
        (-0.05, -0.02, "less, size unresolved"),  # high == -m does not clear it
        (0.01, 0.02, "more, size unresolved"),  # high == +m is not inside
        (-0.02, -0.01, "less, size unresolved"),  # low == -m is not inside
        (0.0001, 0.03, "more, size unresolved"),  # just off 0
        (-0.03, -0.0001, "less, size unresolved"),
        (0.02, 0.02, "more, size unresolved"),  # a point on +m
        # holds 0 and reaches the margin
        (-0.05, 0.05, "inconclusive"),  # past the margin on both sides
        (-0.01, 0.05, "inconclusive"),  # past +m
        (-0.05, 0.01, "inconclusive"),  # past -m
        (-0.02, 0.01, "inconclusive"),  # low == -m is not inside
        (-0.01, 0.02, "inconclusive"),  # high == +m is not inside
        (0.0, 0.03, "inconclusive"),  # low == 0 does not exclude 0
        (-0.03, 0.0, "inconclusive"),  # high == 0 does not exclude 0
        (0.0, 0.02, "inconclusive"),  # both edges at once
    ],
)
def test_decide_outcomes_and_boundaries(low, high, outcome):
    assert decide(Interval(0.5 * (low + high), low, high), margin=M) == outcome


@pytest.mark.parametrize("low, high", [(0.03, 0.09), (0.005, 0.015), (0.01, 0.05), (0.02, 0.05), (0.0, 0.03),
                                       (-0.05, 0.05), (0.0, 0.0199), (-0.02, 0.01)])
def test_decide_is_antisymmetric(low, high):
    """``b - a`` gets the mirror outcome of ``a - b``."""
    mirror = {"more": "less", "less": "more", "more, size unresolved": "less, size unresolved",
              "less, size unresolved": "more, size unresolved", "about the same": "about the same",
              "inconclusive": "inconclusive"}
    assert decide(Interval(0.0, -high, -low), M) == mirror[decide(Interval(0.0, low, high), M)]


def test_the_directional_outcomes_reach_the_margin_from_its_inner_side():
    """On a grid of intervals: a directional outcome always has 0 < lo <= m <= hi or its mirror (an
    interval that excludes 0 inside the margin is "about the same"), "inconclusive" holds 0 and
    reaches the margin, and no outcome's direction is against the interval's sign."""
    grid = np.round(np.arange(-0.05, 0.0501, 0.0025), 6)
    for lo in grid:
        for hi in grid[grid >= lo]:
            o = decide(Interval(0.5 * (lo + hi), lo, hi), M)
            assert o in OUTCOMES
            if o == "more, size unresolved":
                assert 0 < lo <= M <= hi
            if o == "less, size unresolved":
                assert lo <= -M <= hi < 0
            if o == "inconclusive":
                assert lo <= 0 <= hi and (lo <= -M or hi >= M)
            assert direction(o) in ({1, 0} if lo > 0 else {-1, 0} if hi < 0 else {0, None})  # never against the sign


@pytest.mark.parametrize("margin", [0.0, -0.1, float("nan"), float("inf")])
def test_decide_needs_a_positive_finite_margin(margin):
    with pytest.raises(ValueError, match="margin"):
        decide(Interval(0.0, -1.0, 1.0), margin)


def test_compare_is_the_paired_difference_and_its_decision():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(2, 200))
    sample = PairedSample({"fcn": shared + 0.1, "cnn": shared + rng.normal(0, 0.01, size=(2, 200))})
    c = compare(sample, "fcn", "cnn", metric="consistency", margin=0.02, label="FCN vs CNN", n_boot=300, seed=4)
    assert c.interval == difference(sample, "fcn", "cnn", n_boot=300, seed=4)
    assert c.outcome == "more" and c.interval.low > 0.02
    assert compare(sample, "cnn", "fcn", metric="consistency", margin=0.02, label="", n_boot=300).outcome == "less"
    assert compare(sample, "cnn", "fcn", metric="consistency", margin=0.5, label="", n_boot=300).outcome == "about the same"
    d = c.to_dict()
    assert d["label"] == "FCN vs CNN" and d["metric"] == "consistency" and d["interval"] == c.interval.to_dict()
    assert set(d) == {"label", "a", "b", "metric", "interval", "margin", "outcome"}


def test_comparison_rejects_unknown_outcomes():
    assert len(OUTCOMES) == 6 and len(set(OUTCOMES)) == 6
    with pytest.raises(ValueError, match="outcome"):
        Comparison("x", "a", "b", "m", Interval(0.0, 0.0, 0.0), 0.1, "better")


def test_a_comparison_label_cannot_contradict_its_interval():
    deficit = Interval(-0.037, -0.054, -0.019)
    assert Comparison("x", "a", "b", "test_accuracy", deficit, 0.02).outcome == "less, size unresolved"
    assert Comparison("x", "a", "b", "test_accuracy", deficit, 0.02, "less, size unresolved").to_dict()["outcome"] == (
        "less, size unresolved")
    for wrong in ("inconclusive", "less", "about the same"):
        with pytest.raises(ValueError, match="contradicts"):
            Comparison("x", "a", "b", "test_accuracy", deficit, 0.02, wrong)
