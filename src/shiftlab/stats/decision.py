"""Decide what an interval of a difference says, against a margin (``docs/definitions.md``, "Intervals").

For the interval ``[lo, hi]`` of a difference ``a - b`` and a margin ``m > 0``, four outcomes, the
third with a sign (six codes in all, :data:`OUTCOMES`)::

    lo > +m                      -> "more"                   beyond the margin
    hi < -m                      -> "less"
    -m < lo and hi < +m          -> "about the same"         equivalence, as in a TOST (even if it excludes 0)
    otherwise, lo > 0            -> "more, size unresolved"  it excludes 0, but reaches the margin:
    otherwise, hi < 0            -> "less, size unresolved"  the difference may be below or above m
    otherwise                    -> "inconclusive"           it holds 0 and reaches the margin

Every inequality is strict: an endpoint exactly on ``+m`` or ``-m`` is not beyond the margin (nor
inside it), and an endpoint exactly on 0 does not exclude 0. The directional outcomes always have
``0 < lo <= m <= hi`` (or the mirror image): an interval that excludes 0 and stays inside the
margin is "about the same".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Interval, PairedSample, difference

__all__ = ["LESS_UNRESOLVED", "MORE_UNRESOLVED", "OUTCOMES", "Comparison", "compare", "decide", "direction"]

#: The difference is above 0, but its interval reaches the margin: by how much is not resolved.
MORE_UNRESOLVED = "more, size unresolved"
#: The difference is below 0, but its interval reaches the margin: by how much is not resolved.
LESS_UNRESOLVED = "less, size unresolved"
#: Every outcome :func:`decide` returns.
OUTCOMES = ("more", "less", "about the same", MORE_UNRESOLVED, LESS_UNRESOLVED, "inconclusive")
_DIRECTION = {"more": 1, MORE_UNRESOLVED: 1, "about the same": 0, "less": -1, LESS_UNRESOLVED: -1}


def decide(interval: Interval, margin: float) -> str:
    """Outcome of the interval of a difference against ``margin`` (> 0), one of :data:`OUTCOMES`.

    Example:
        >>> decide(Interval(0.10, 0.06, 0.14), margin=0.02)
        'more'
        >>> decide(Interval(-0.10, -0.14, -0.06), margin=0.02)
        'less'
        >>> decide(Interval(0.00, -0.01, 0.01), margin=0.02), decide(Interval(0.01, 0.005, 0.015), margin=0.02)
        ('about the same', 'about the same')
        >>> decide(Interval(0.038, 0.018, 0.057), margin=0.02)
        'more, size unresolved'
        >>> decide(Interval(-0.037, -0.054, -0.019), margin=0.02)
        'less, size unresolved'
        >>> decide(Interval(0.02, -0.01, 0.05), margin=0.02)
        'inconclusive'

        On the edges: an endpoint on the margin is not beyond it, one on 0 does not exclude it.

        >>> decide(Interval(0.03, 0.02, 0.04), margin=0.02), decide(Interval(0.01, 0.0, 0.04), margin=0.02)
        ('more, size unresolved', 'inconclusive')
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
    if lo > 0:
        return MORE_UNRESOLVED
    if hi < 0:
        return LESS_UNRESOLVED
    return "inconclusive"


def direction(outcome: str) -> int | None:
    """The sign an outcome establishes: +1 ("more", "more, size unresolved"), -1 ("less", "less,
    size unresolved"), 0 ("about the same"), None ("inconclusive" or anything else).

    Example:
        >>> [direction(o) for o in OUTCOMES]
        [1, -1, 0, 1, -1, None]
    """
    return _DIRECTION.get(outcome)


@dataclass(frozen=True)
class Comparison:
    """The paired difference ``mean(a) - mean(b)`` of one metric and what it says against ``margin``.

    ``outcome`` is :func:`decide` of the interval against the margin: left out, it is computed; given,
    it must be that (a label never contradicts its interval).

    Example:
        >>> c = Comparison("FCN vs CNN", "strided_gap", "maxpool_fc", "consistency",
        ...                Interval(0.1, 0.05, 0.15), 0.02, "more")
        >>> c.to_dict()["interval"]["low"], c.to_dict()["outcome"]
        (0.05, 'more')
        >>> Comparison("", "a", "b", "test_accuracy", Interval(-0.037, -0.054, -0.019), 0.02).outcome
        'less, size unresolved'
    """

    label: str
    a: str
    b: str
    metric: str
    interval: Interval
    margin: float
    outcome: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES + ("",):
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        decided = decide(self.interval, self.margin)
        if not self.outcome:
            object.__setattr__(self, "outcome", decided)
        elif self.outcome != decided:
            raise ValueError(f"outcome {self.outcome!r} contradicts its interval [{self.interval.low}, "
                             f"{self.interval.high}] against the margin {self.margin}: that is {decided!r}")

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
