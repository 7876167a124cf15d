"""The verdict: the question answered point by point from a study's typed results
(``docs/study.md``, "Verdict").

Every point is a typed result (:mod:`shiftlab.report.points`); a sentence's label is the decision
of its comparison's interval against the margin, written with the interval: "more" / "less"
beyond it, "about the same" inside it, "more" / "less" by an amount that may be smaller or larger
than the margin when the interval excludes 0 but reaches it, "inconclusive" when it holds 0 and
reaches it (``docs/definitions.md``, "Intervals"); a model that did not reach the target
training accuracy is said to under-fit, never to perform worse. The answer's text is written by
:mod:`shiftlab.report.prose`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftlab.study.results import StudyResults

from . import answer_text, prose
from .answer import FcnAnswer, Signature, answer_points, why_points
from .claims import ClaimResult, evaluate_claims
from .evidence import cells, reference_condition
from .points import (
    CAPACITY_PAIRS,
    INVARIANCE_PAIRS,
    PERFORMANCE_PAIRS,
    CapacityPoint,
    ClaimPoint,
    EffectsPoint,
    MechanismPoint,
    PairPoint,
    PerformancePoint,
    capacity_point,
    effects_point,
    mechanism_point,
    pair_point,
    performance_point,
)

__all__ = ["Point", "Verdict", "verdict"]

#: Any point a :class:`Verdict` rests on (its ``points``), each with the numbers behind one sentence.
Point = PairPoint | MechanismPoint | PerformancePoint | EffectsPoint | ClaimPoint | CapacityPoint | FcnAnswer | Signature


@dataclass(frozen=True)
class Verdict:
    """The answer: ``opening`` (both questions answered for each FCN, and why: a line each,
    :mod:`shiftlab.report.answer`), the evidence (``answer``: paragraphs separated by a blank
    line), the points they rest on, the claims.

    ``conditions``: the conditions the pairs are compared in (the reference, then ``augmented``).
    """

    answer: str
    points: list[Point]
    claims: list[ClaimResult]
    conditions: tuple[str, ...]
    opening: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """The opening answer, a line each (both questions for each FCN, and why); the first
        paragraph of :attr:`answer` when no FCN was measured."""
        return "\n".join(self.opening) if self.opening else self.answer.split("\n\n")[0]

    def point(self, point_id: str, condition: str | None = None) -> Point:
        """The point ``point_id`` (in ``condition``, for pair and performance points)."""
        for p in self.points:
            if p.id == point_id and (condition is None or getattr(p, "condition", condition) == condition):
                return p
        raise KeyError(f"no point {point_id!r}" + (f" in {condition!r}" if condition else ""))

    def claim(self, claim_id: str) -> ClaimResult:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)

    def to_dict(self) -> dict:
        return {"opening": list(self.opening), "answer": self.answer, "conditions": list(self.conditions),
                "points": [p.to_dict() for p in self.points],
                "claims": [c.to_dict() for c in self.claims]}


def verdict(results: StudyResults) -> Verdict:
    """Answer the question from ``results`` (no figures, no files).

    Example::

        v = verdict(load_results("runs/study"))
        print(v.answer)
        print([(p.id, p.outcome) for p in v.points])
    """
    claims = evaluate_claims(results)
    ref = reference_condition(results)
    conditions = tuple(c for c in dict.fromkeys((ref, "augmented")) if c is not None and cells(results, c))
    points: list[Point] = []
    for cond in conditions:
        points += [pair_point(results, pid, cond) for pid in INVARIANCE_PAIRS]
    if ref is not None:
        points += [mechanism_point(results, c.model, ref) for c in cells(results, ref)]
    for cond in conditions:
        points += [performance_point(results, pid, cond) for pid in PERFORMANCE_PAIRS]
    if results.analysis.capacity:
        points += [capacity_point(results, pid) for pid in CAPACITY_PAIRS]
    points += [effects_point(results, "consistency"), effects_point(results, "test_accuracy")]
    by_id = {c.id: c for c in claims}
    points += [ClaimPoint("transfer", by_id["C9"]), ClaimPoint("probe", by_id["C8"])]
    opening: list[str] = []
    if ref is not None:
        answers, signatures = answer_points(results, ref), why_points(results, ref)
        points += [*answers, *signatures]
        stride = next((r.total_stride for r in results.main_runs), None)
        opening = answer_text.opening(answers, signatures, stride)
    return Verdict(prose.answer(results, points, conditions), points, claims, conditions, tuple(opening))
