"""C6: an FCN is a CNN without fully connected layers; an FC head over a flattened map is not
shift invariant, a global pool is (``docs/definitions.md``, "Consistency").

Read from the matched head pairs (same trunk, global-pool head against FC head: ``fcn_head``,
``maxpool_head``) and the factorial main effect of the head, centred training.
"""

from __future__ import annotations

from shiftlab.stats import direction
from shiftlab.study.analysis import PAIRS
from shiftlab.study.results import StudyResults

from ..evidence import at_chance, comparison, effect, effect_outcome, reference_condition
from .result import CONFIRMED, INCONCLUSIVE, NOT_MEASURED, PARTLY, REFUTED, ClaimResult

__all__ = ["HEAD_PAIRS", "evaluate"]

#: The matched pairs that differ only in the head (global pool minus FC).
HEAD_PAIRS = ("fcn_head", "maxpool_head")


def evaluate(results: StudyResults) -> ClaimResult:
    ref = reference_condition(results)
    intervals, outcomes, notes = {}, {}, []
    pairs = {p.id: p for p in PAIRS}
    for pid in HEAD_PAIRS:
        c = comparison(results, pid, ref, "consistency") if ref else None
        if ref is None or c is None:
            continue
        cell = results.analysis.cell(pairs[pid].a, ref)
        if cell is not None and at_chance(results, cell):
            notes.append(f"{pairs[pid].a} is at chance ({ref}): trivially invariant, the pair is not counted")
            continue
        intervals[pid], outcomes[pid] = c.interval, c.outcome
    gap = effect(results, "consistency", "head", "gap", "fc")
    if gap is not None:
        intervals["effect:gap-fc"], outcomes["effect:gap-fc"] = gap.interval, effect_outcome(results, gap)
    pair_outcomes = [outcomes[p] for p in HEAD_PAIRS if p in outcomes]
    if not pair_outcomes:
        return ClaimResult("C6", NOT_MEASURED, {}, intervals, outcomes, tuple(notes) or (
            "no matched head pair (the same trunk with an FC and a global-pool head) was measured",))
    # a pair below 0 ("less", "less, size unresolved") is less invariant or about the same with the pool
    # either way; one above 0 but not by the margin for sure ("more, size unresolved") holds in part
    if all(o == "more" for o in pair_outcomes):
        status = CONFIRMED
    elif any(direction(o) == -1 for o in pair_outcomes) or all(o == "about the same" for o in pair_outcomes):
        status = REFUTED
    elif any(direction(o) == 1 for o in pair_outcomes):
        status = PARTLY
    else:
        status = INCONCLUSIVE
    return ClaimResult("C6", status, {}, intervals, outcomes, tuple(notes))
