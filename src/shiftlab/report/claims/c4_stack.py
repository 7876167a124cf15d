"""C4: a stack of equivariant layers is equivariant; with a global pool at the end the classifier
is invariant to the shifts that are multiples of the total stride S
(``docs/definitions.md``, "Aligned and unaligned agreement", "Polyphase certificate").

Two measurements: exactly, the pooled output's error at multiples of S under circular padding
and circular shifts (the ``circular`` condition); on the canvas (zero padding, objects moved on a
blank canvas), the aliasing signature: agreement with the unshifted prediction at multiples of S
(``aligned``) against other shifts (``unaligned``).
"""

from __future__ import annotations

from shiftlab.stats import decide
from shiftlab.study.results import StudyResults

from ..evidence import at_chance, cells, reference_condition
from ..thresholds import EXACT_ERROR_TOL
from .c3_global_pool import pool_errors
from .result import CONFIRMED, INCONCLUSIVE, NOT_MEASURED, PARTLY, REFUTED, ClaimResult

__all__ = ["evaluate"]


def evaluate(results: StudyResults) -> ClaimResult:
    ref = reference_condition(results)
    margin = results.analysis.margin
    numbers: dict[str, float | None] = {}
    intervals, outcomes, notes = {}, {}, []
    exact = []
    gp = [c for c in cells(results, ref) if c.head != "fc"] if ref else []
    for cell in gp:
        found = pool_errors(results, cell.model, "circular")
        if found is not None:
            _, pool, other = found
            numbers[f"{cell.model}:circular_error_aligned"] = pool
            numbers[f"{cell.model}:circular_error_other"] = other
            exact.append(pool <= EXACT_ERROR_TOL)
        al, un, gap = (cell.metrics.get(m) for m in ("aligned", "unaligned", "aliasing_gap"))
        if al is None or un is None or gap is None:
            continue
        if at_chance(results, cell):
            notes.append(f"{cell.model} is at chance ({ref}): trivially invariant, not counted")
            continue
        intervals[f"{cell.model}:aligned"], intervals[f"{cell.model}:unaligned"] = al, un
        intervals[f"{cell.model}:aligned-unaligned"] = gap  # paired within each image
        outcomes[f"{cell.model}:aligned-unaligned"] = decide(gap, margin)
    if not gp:
        return ClaimResult("C4", NOT_MEASURED, notes=("no global-pool model was measured",))
    if exact:
        status = CONFIRMED if all(exact) else (REFUTED if not any(exact) else PARTLY)
        return ClaimResult("C4", status, numbers, intervals, outcomes, tuple(notes))
    notes.append("exactness needs the circular-padding condition (circular), which was not run")
    near = [intervals[f"{c.model}:aligned"].high >= 1 - margin for c in gp if f"{c.model}:aligned" in intervals]
    if not near:
        return ClaimResult("C4", NOT_MEASURED, numbers, intervals, outcomes, tuple(notes))
    status = PARTLY if all(near) else (REFUTED if not any(near) else INCONCLUSIVE)
    return ClaimResult("C4", status, numbers, intervals, outcomes, tuple(notes))
