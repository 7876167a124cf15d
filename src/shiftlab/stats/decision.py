"""Decide what an interval of a difference says, against a margin (``docs/definitions.md``, "Intervals").

A difference is an effect only when its interval clears the margin ``m > 0``; for an interval ``[lo, hi]``::

    lo > +m            -> "more"
    hi < -m            -> "less"
    -m < lo, hi < +m   -> "about the same"
    otherwise          -> "inconclusive"
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Interval, PairedSample, difference

__all__ = ["OUTCOMES", "Comparison", "compare", "decide"]

OUTCOMES = ("more", "less", "about the same", "inconclusive")


def decide(interval: Interval, margin: float) -> str:
    """Outcome of the interval of a difference against ``margin`` (> 0), one of :data:`OUTCOMES`.

    Example:
        >>> decide(Interval(0.10, 0.06, 0.14), margin=0.02)
        'more'
        >>> decide(Interval(0.00, -0.01, 0.01), margin=0.02)
        'about the same'
        >>> decide(Interval(0.02, 0.01, 0.03), margin=0.02)
        'inconclusive'
    """
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a finite number > 0, got {margin}")
    lo, hi = interval.low, interval.high
    if lo > margin:
        return "more"
    if hi < -margin:
        return "less"
    if -margin < lo and hi < margin:
        return "about the same"
    return "inconclusive"


@dataclass(frozen=True)
class Comparison:
    """The paired difference ``mean(a) - mean(b)`` of one metric and what it says against ``margin``.

    Example:
        >>> c = Comparison("FCN vs CNN", "strided_gap", "maxpool_fc", "consistency",
        ...                Interval(0.1, 0.05, 0.15), 0.02, "more")
        >>> c.to_dict()["interval"]["low"], c.to_dict()["outcome"]
        (0.05, 'more')
    """

    label: str
    a: str
    b: str
    metric: str
    interval: Interval
    margin: float
    outcome: str

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "a": self.a,
            "b": self.b,
            "metric": self.metric,
            "interval": self.interval.to_dict(),
            "margin": self.margin,
            "outcome": self.outcome,
        }


def compare(
    sample: PairedSample,
    a: str,
    b: str,
    *,
    metric: str,
    margin: float,
    label: str,
    level: float = DEFAULT_LEVEL,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> Comparison:
    """Paired bootstrap interval of ``mean(a) - mean(b)`` (see :func:`~shiftlab.stats.bootstrap.difference`) and
    its :func:`decide` outcome.

    Example:
        >>> s = PairedSample({"x": [[0.9, 0.8]], "y": [[0.5, 0.4]]})
        >>> compare(s, "x", "y", metric="consistency", margin=0.05, label="x vs y", n_boot=100).outcome
        'more'
    """
    interval = difference(sample, a, b, level=level, n_boot=n_boot, seed=seed)
    return Comparison(label, a, b, metric, interval, float(margin), decide(interval, margin))
