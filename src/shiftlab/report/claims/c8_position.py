"""C8 (Kayhan & van Gemert 2020): zero padding lets a network see absolute position
(``docs/study.md``, "Conditions": the position probe).

The probe's class is where the object is (left or right, a multiple of the total stride apart).
A global-pool network can only learn it through the border: above chance (0.5) with zero
padding (``probe``), at chance with circular padding (``probe_circular``). An FC head reads
position off the flattened map whatever the padding, so FC models are reported, not counted.
"""

from __future__ import annotations

from shiftlab.stats import LESS_UNRESOLVED, MORE_UNRESOLVED, decide
from shiftlab.study.results import StudyResults

from ..evidence import models, versus
from .result import CONFIRMED, INCONCLUSIVE, NOT_MEASURED, PARTLY, REFUTED, ClaimResult

__all__ = ["CHANCE", "evaluate"]

#: Chance accuracy of the two-class probe.
CHANCE = 0.5


def evaluate(results: StudyResults) -> ClaimResult:
    margin = results.analysis.margin
    intervals, outcomes = {}, {}
    verdicts = []
    for model in models(results):
        seen = {}
        for cond in ("probe", "probe_circular"):
            cell = results.analysis.cell(model, cond)
            iv = cell.metrics.get("probe_accuracy") if cell is not None else None
            if iv is None:
                continue
            intervals[f"{model}:{cond}"] = iv
            seen[cond] = outcomes[f"{model}:{cond}"] = decide(versus(iv, CHANCE), margin)
        head = next(c.head for c in results.analysis.cells if c.model == model)
        if head == "fc" or "probe" not in seen:
            continue
        zeros, circ = seen["probe"], seen.get("probe_circular")
        if zeros == "more" and circ in ("about the same", None):
            verdicts.append(CONFIRMED if circ else PARTLY)
        elif zeros in ("about the same", "less", LESS_UNRESOLVED) or circ == "more":
            verdicts.append(REFUTED)
        elif zeros == MORE_UNRESOLVED and circ in ("about the same", None):  # above chance, not for sure by the margin
            verdicts.append(PARTLY)
        else:
            verdicts.append(INCONCLUSIVE)
    if not intervals:
        return ClaimResult("C8", NOT_MEASURED, notes=("the position probe (probe, probe_circular) was not run",))
    if not verdicts:
        return ClaimResult("C8", NOT_MEASURED, {}, intervals, outcomes,
                           ("only FC-head models ran the probe; they read position off the flattened map",))
    if all(v == CONFIRMED for v in verdicts):
        status = CONFIRMED
    elif all(v == REFUTED for v in verdicts):
        status = REFUTED
    elif CONFIRMED in verdicts or PARTLY in verdicts:
        status = PARTLY
    else:
        status = REFUTED if REFUTED in verdicts else INCONCLUSIVE
    return ClaimResult("C8", status, {}, intervals, outcomes)
