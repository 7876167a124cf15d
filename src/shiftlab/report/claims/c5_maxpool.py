"""C5: max-pooling "creates" translation invariance; expected: only local and partial
(``docs/definitions.md``, "Flip rate", "Consistency", "Factorial effects").

Read from the max-pool cells (centred training): a flip rate above zero and a consistency below
one mean a one-pixel shift can still change the output; the factorial main effect of max-pool
against strided downsampling says whether it adds invariance at all.
"""

from __future__ import annotations

from shiftlab.stats import LESS_UNRESOLVED
from shiftlab.study.results import StudyResults

from ..evidence import cells, effect, effect_outcome, reference_condition
from ..thresholds import EXACT_AGREEMENT_TOL, FLIP_RATE_ZERO
from .result import CONFIRMED, INCONCLUSIVE, NOT_MEASURED, PARTLY, REFUTED, ClaimResult

__all__ = ["evaluate"]


def evaluate(results: StudyResults) -> ClaimResult:
    ref = reference_condition(results)
    pooled = [c for c in cells(results, ref) if c.downsampling == "maxpool"] if ref else []
    intervals, outcomes = {}, {}
    partial, exact = [], []
    for cell in pooled:
        flip, cons = cell.metrics.get("flip_rate"), cell.metrics.get("consistency")
        if flip is None or cons is None:
            continue
        intervals[f"{cell.model}:flip_rate"], intervals[f"{cell.model}:consistency"] = flip, cons
        partial.append(flip.low > FLIP_RATE_ZERO or cons.high < 1 - EXACT_AGREEMENT_TOL)
        exact.append(flip.high <= FLIP_RATE_ZERO and cons.low >= 1 - EXACT_AGREEMENT_TOL)
    if not intervals:
        return ClaimResult("C5", NOT_MEASURED, notes=("no max-pool model was measured",))
    gain = effect(results, "consistency", "downsampling", "maxpool", "strided")
    if gain is not None:
        intervals["effect:maxpool-strided"] = gain.interval
        outcomes["effect:maxpool-strided"] = effect_outcome(results, gain)
    if all(exact):
        status = CONFIRMED
    elif any(partial):
        # "less, size unresolved": below 0, so less or about the same either way: no invariance created
        status = (REFUTED if outcomes.get("effect:maxpool-strided") in ("less", "about the same", LESS_UNRESOLVED)
                  else PARTLY)
    else:
        status = INCONCLUSIVE
    return ClaimResult("C5", status, {}, intervals, outcomes)
