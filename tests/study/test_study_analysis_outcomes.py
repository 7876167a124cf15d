"""A saved analysis reads back with today's decision rule: each comparison's outcome is decided
again from its interval and margin (``docs/definitions.md``, "Intervals")."""

from __future__ import annotations

from shiftlab.study.analysis import Analysis


def _saved(interval: dict, outcome: str) -> dict:
    comparison = {"label": "fcn_vs_classic|centred", "a": "strided_gap|centred", "b": "maxpool_fc|centred",
                  "metric": "test_accuracy", "interval": interval, "margin": 0.02, "outcome": outcome}
    return {"margin": 0.02, "level": 0.95, "n_boot": 2000, "cells": [], "comparisons": [comparison], "effects": [],
            "capacity": [], "capacity_comparisons": [dict(comparison, label="fcn_vs_classic|8")]}


def test_an_outcome_saved_under_the_old_rule_reads_as_its_interval_says():
    # the published Fashion-MNIST deficit, saved as "inconclusive" before the rule had a directional outcome
    deficit = {"estimate": -0.037, "low": -0.054, "high": -0.019, "level": 0.95, "n_boot": 2000}
    a = Analysis.from_dict(_saved(deficit, "inconclusive"))
    assert a.comparison("fcn_vs_classic", "centred", "test_accuracy").outcome == "less, size unresolved"
    assert a.capacity_comparisons[0].outcome == "less, size unresolved"
    assert a.to_dict()["comparisons"][0]["outcome"] == "less, size unresolved"
    beyond = dict(deficit, high=-0.0204)
    assert Analysis.from_dict(_saved(beyond, "less")).comparisons[0].outcome == "less"
