"""Decisions against a margin: the four outcomes and their boundaries, and compare()."""

from __future__ import annotations

import numpy as np
import pytest

from shiftlab.stats import OUTCOMES, Comparison, Interval, PairedSample, compare, decide, difference


@pytest.mark.parametrize(
    "low, high, outcome",
    [
        (0.03, 0.09, "more"),  # clears +m
        (-0.09, -0.03, "less"),  # clears -m
        (-0.015, 0.015, "about the same"),  # inside (-m, m)
        (0.01, 0.05, "inconclusive"),  # straddles +m
        (-0.05, -0.01, "inconclusive"),  # straddles -m
        (-0.05, 0.05, "inconclusive"),  # wider than the margin band on both sides
        (0.02, 0.05, "inconclusive"),  # low == +m does not clear it
        (-0.02, 0.01, "inconclusive"),  # low == -m is not inside
    ],
)
def test_decide_outcomes_and_boundaries(low, high, outcome):
    assert decide(Interval(0.5 * (low + high), low, high), margin=0.02) == outcome


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
    assert len(OUTCOMES) == 4
    with pytest.raises(ValueError, match="outcome"):
        Comparison("x", "a", "b", "m", Interval(0.0, 0.0, 0.0), 0.1, "better")
