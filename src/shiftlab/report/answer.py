"""The opening answer: both questions answered for each FCN, from the matched pairs
(``docs/study.md``, "Verdict").

The question has two halves and "FCN" two readings here: Springenberg et al.'s *Strided-CNN*
(``strided_gap``: each pool replaced by a stride on the conv) and their *All-CNN* (``allconv_gap``:
each pool replaced by an extra stride-2 conv), the FCN that matches its max-pool base in the
literature. For each, :func:`answer_points` computes

- **Q1**, invariance: its consistency against the max-pool network with the same global-pool head
  (the like-for-like contrast that isolates max-pooling) and against the classic max-pool CNN;
- **Q2**, performance: its centred test accuracy against the classic max-pool CNN, with the
  accuracy averaged over the shifts and the worst case beside it; a model below the target training
  accuracy is flagged, never called worse;

and :func:`why_points` the distance-matched aliasing signature of the models that say why.
Every label is the decision of an interval against the margin (:func:`shiftlab.stats.decide`); the
words are written by :mod:`shiftlab.report.answer_text`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftlab.stats import Comparison, Interval, decide, direction
from shiftlab.study.analysis import CellStats
from shiftlab.study.results import StudyResults

from .claims.c7_sources import UNDER_FITS
from .evidence import comparison
from .points import NOT_MEASURED

__all__ = ["CLASSIC", "FCNS", "NOT_MEASURED", "SAME_HEAD", "UNDER_FITS", "WHY_MODELS", "FcnAnswer", "Signature",
           "answer_points", "why_points"]

#: The two FCNs of the question, in answer order.
FCNS = ("strided_gap", "allconv_gap")
#: The networks that use max-pooling: the classic CNN (FC head) and the one with the FCN's head.
CLASSIC, SAME_HEAD = "maxpool_fc", "maxpool_gap"
#: The models whose distance-matched signature the "why" line reads, in order.
WHY_MODELS = ("strided_gap", "allconv_gap", "maxpool_gap", "blurstrided_gap", "learned_gap")

#: The matched pair of each (FCN, reference) in :data:`shiftlab.study.analysis.PAIRS`.
_PAIR_IDS = {("strided_gap", CLASSIC): "fcn_vs_classic", ("strided_gap", SAME_HEAD): "fcn_vs_maxpool_gap",
             ("allconv_gap", CLASSIC): "allcnn_vs_classic", ("allconv_gap", SAME_HEAD): "allcnn_vs_maxpool_gap"}


@dataclass(frozen=True)
class FcnAnswer:
    """Both questions for one FCN, in one condition.

    Attributes:
        model: the FCN (one of :data:`FCNS`).
        condition: the training condition the pairs are compared in (centred, unless absent).
        fcn, classic, same_head: the cells of the FCN, the classic CNN and the max-pool GAP network.
        vs_same_head, vs_classic: consistency, FCN minus reference (None: not measured).
        accuracy, shifted_accuracy, worst_case: test accuracy, accuracy averaged over the shifts,
            worst-case accuracy over the shifts; FCN minus the classic CNN.
        under_fitting: the models of the performance pair below the target training accuracy.
        q1: ``"yes"`` (as invariant as both max-pool networks or more), ``"no"`` (less than both),
            ``"partly"`` (less than one, not the other), ``"inconclusive"`` or ``"not measured"``.
        q2: from the test accuracy against the classic CNN: ``"yes"`` (about the same),
            ``"better"``, ``"no"``, ``"inconclusive"``, ``"under-fits"`` or ``"not measured"``.
    """

    model: str
    condition: str
    fcn: CellStats | None
    classic: CellStats | None
    same_head: CellStats | None
    vs_same_head: Comparison | None
    vs_classic: Comparison | None
    accuracy: Comparison | None
    shifted_accuracy: Comparison | None
    worst_case: Comparison | None
    under_fitting: tuple[str, ...]
    q1: str
    q2: str

    @property
    def id(self) -> str:
        return f"answer:{self.model}"

    def to_dict(self) -> dict:
        comparisons = ("vs_same_head", "vs_classic", "accuracy", "shifted_accuracy", "worst_case")
        d = {k: (None if getattr(self, k) is None else getattr(self, k).to_dict()) for k in comparisons}
        d.update(kind="answer", id=self.id, model=self.model, condition=self.condition, under_fitting=list(self.under_fitting),
                 q1=self.q1, q2=self.q2)
        return d


@dataclass(frozen=True)
class Signature:
    """A model's distance-matched aliasing signature (``aliasing_gap_matched``: agreement at the
    multiples of the total stride minus at the other shifts, both at distance S, paired within each
    image) and its decision against the margin (None: not measured)."""

    model: str
    gap: Interval | None
    outcome: str

    @property
    def id(self) -> str:
        return f"signature:{self.model}"

    def to_dict(self) -> dict:
        return {"kind": "signature", "id": self.id, "model": self.model, "gap": None if self.gap is None else self.gap.to_dict(),
                "outcome": self.outcome}


def _q1(outcomes: list[str]) -> str:
    """Q1 from the consistency outcomes against the two max-pool networks (those measured)."""
    if not outcomes:
        return NOT_MEASURED
    signs = [direction(o) for o in outcomes]
    if any(s is not None and s < 0 for s in signs):
        return "no" if all(s is not None and s < 0 for s in signs) else "partly"
    if any(s is None for s in signs):
        return "inconclusive"
    return "yes"


def _q2(accuracy: Comparison | None, under_fitting: tuple[str, ...]) -> str:
    if accuracy is None:
        return NOT_MEASURED
    if under_fitting:
        return UNDER_FITS
    sign = direction(accuracy.outcome)
    return {None: "inconclusive", 0: "yes", 1: "better", -1: "no"}[sign]


def answer_points(results: StudyResults, condition: str) -> list[FcnAnswer]:
    """Both questions for every FCN of :data:`FCNS` measured in ``condition``."""
    a = results.analysis
    out = []

    def pair(model: str, reference: str, metric: str) -> Comparison | None:
        return comparison(results, _PAIR_IDS[(model, reference)], condition, metric)

    for model in FCNS:
        fcn = a.cell(model, condition)
        if fcn is None:
            continue
        classic, same_head = a.cell(CLASSIC, condition), a.cell(SAME_HEAD, condition)
        vs_same, vs_classic = pair(model, SAME_HEAD, "consistency"), pair(model, CLASSIC, "consistency")
        accuracy = pair(model, CLASSIC, "test_accuracy")
        under = tuple(c.model for c in (fcn, classic) if c is not None and c.all_converged is False)
        out.append(FcnAnswer(model, condition, fcn, classic, same_head, vs_same, vs_classic, accuracy,
                             pair(model, CLASSIC, "accuracy"), pair(model, CLASSIC, "worst_case"), under,
                             _q1([c.outcome for c in (vs_same, vs_classic) if c is not None]), _q2(accuracy, under)))
    return out


def why_points(results: StudyResults, condition: str) -> list[Signature]:
    """The distance-matched signature of every model of :data:`WHY_MODELS` measured in ``condition``."""
    out = []
    for model in WHY_MODELS:
        cell = results.analysis.cell(model, condition)
        if cell is None:
            continue
        gap = cell.metrics.get("aliasing_gap_matched")
        out.append(Signature(model, gap, NOT_MEASURED if gap is None else decide(gap, results.analysis.margin)))
    return out
