"""The opening answer in words: one line per FCN for each question, and why
(:mod:`shiftlab.report.answer` computes it; ``docs/study.md``, "Verdict").

The lines are short on purpose: they open the report above the fold, beside the figure of agreement
against distance; the matched pairs, the mechanism and the controls follow in the sections below.
"""

from __future__ import annotations

from shiftlab.stats import LESS_UNRESOLVED, MORE_UNRESOLVED, Comparison

from .answer import NOT_MEASURED, UNDER_FITS, FcnAnswer, Signature
from .fmt import fmt, fmt_diff

__all__ = ["FCN_NAMES", "Q1", "Q2", "opening", "q1_line", "q2_line", "why_line"]

Q1 = "Does a fully convolutional network have the translation invariance of a max-pooling network?"
Q2 = "If not, why does it perform as well?"
#: The two FCNs, as the answer names them.
FCN_NAMES = {"strided_gap": "Strided-CNN FCN", "allconv_gap": "All-CNN FCN"}
_SHORT = {"maxpool_gap": "the max-pool GAP network", "maxpool_fc": "the classic CNN",
          "blurstrided_gap": "the anti-aliased FCN", "learned_gap": "a learned 4x4 filter", **{
              k: f"the {v}" for k, v in FCN_NAMES.items()}}
#: A comparison's outcome as a short label beside its difference.
_LABEL = {"more": "more", "less": "less", "about the same": "about the same", "inconclusive": "inconclusive",
          MORE_UNRESOLVED: "more, by an unresolved amount", LESS_UNRESOLVED: "less, by an unresolved amount"}
_Q1_HEAD = {"yes": "Yes", "no": "No", "partly": "Partly", "inconclusive": "Inconclusive", NOT_MEASURED: "Not measured"}
_Q2_HEAD = {"yes": "As well", "better": "Better", "no": "Not as well",
            "inconclusive": "Inconclusive", UNDER_FITS: "Not compared (under-fits)", NOT_MEASURED: "Not measured"}


def _estimate(cell, metric: str) -> float | None:
    iv = None if cell is None else cell.metrics.get(metric)
    return None if iv is None else iv.estimate


def _diff(c: Comparison | None) -> str:
    """``"less, -0.58 [-0.60, -0.56]"``: the outcome and the difference with its 95% interval."""
    if c is None:
        return "not measured"
    return f"{_LABEL[c.outcome]}, {fmt_diff(c.interval, margin=c.margin, short=True)}"


def q1_line(p: FcnAnswer) -> str:
    """One FCN's answer to Q1: its consistency against the two max-pool networks'."""
    head = f"{FCN_NAMES[p.model]} ({p.model}): {_Q1_HEAD[p.q1]}."
    mine = _estimate(p.fcn, "consistency")
    parts = [f"{_SHORT[ref.model]}'s {fmt(_estimate(ref, 'consistency'))} ({_diff(c)})"
             for c, ref in ((p.vs_same_head, p.same_head), (p.vs_classic, p.classic)) if c is not None and ref is not None]
    return head + (f" Consistency {fmt(mine)} against " + " and ".join(parts) + "." if parts else "")


def q2_line(p: FcnAnswer) -> str:
    """One FCN's answer to Q2: centred test accuracy against the classic CNN, then under shifts."""
    head = f"{FCN_NAMES[p.model]}: {_Q2_HEAD[p.q2]}."
    if p.q2 == NOT_MEASURED:
        return head
    if p.q2 == UNDER_FITS:
        cells = [c for c in (p.fcn, p.classic) if c is not None and c.model in p.under_fitting]
        return head + " " + "; ".join(f"{c.model} ends at training accuracy {fmt(c.final_train_accuracy)}" for c in cells) + "."
    text = (f" Test accuracy {fmt(_estimate(p.fcn, 'test_accuracy'))} against the classic CNN's "
            f"{fmt(_estimate(p.classic, 'test_accuracy'))} ({_diff(p.accuracy)})")
    shifted = [f"{what} {fmt(_estimate(p.fcn, metric))} vs {fmt(_estimate(p.classic, metric))} ({_LABEL[c.outcome]})"
               for what, metric, c in (("over the shifts", "accuracy", p.shifted_accuracy),
                                       ("worst case", "worst_case", p.worst_case)) if c is not None]
    return head + text + ("; " + ", ".join(shifted) if shifted else "") + "."


_SIGNATURE = {"more": "aliasing", MORE_UNRESOLVED: "aliasing, size unresolved", "about the same": "none",
              "less": "reversed", LESS_UNRESOLVED: "reversed, size unresolved", "inconclusive": "inconclusive"}


def why_line(signatures: list[Signature], stride: int | None) -> str:
    """The mechanism in one line: each model's distance-matched signature with its decision."""
    measured = [s for s in signatures if s.gap is not None]
    if not measured:
        return "Why: the distance-matched aliasing signature was not measured."
    s_text = f"{stride} px" if stride else "the total stride"
    items = "; ".join(f"{_SHORT.get(s.model, s.model)} {fmt_diff(s.gap, short=True)} ({_SIGNATURE[s.outcome]})"
                      for s in measured if s.gap is not None)
    return f"Why: agreement at the multiples of the stride minus between them, both at {s_text} (aliasing): {items}."


def opening(answers: list[FcnAnswer], signatures: list[Signature], stride: int | None) -> list[str]:
    """The answer's opening lines: Q1 and a line per FCN, Q2 and a line per FCN, then why (empty
    when no FCN was measured)."""
    if not answers:
        return []
    return [f"1. {Q1}", *(q1_line(p) for p in answers), f"2. {Q2}", *(q2_line(p) for p in answers),
            why_line(signatures, stride)]
