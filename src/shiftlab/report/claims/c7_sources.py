"""C7: FCNs perform as well because their invariance comes from elsewhere: data augmentation,
global pooling, the dataset's own centring (``docs/definitions.md``, "Factorial effects";
``docs/study.md``, "Training budget").

Two halves. Where invariance comes from: the factorial main effects on consistency of the head
(global pool against FC), of augmentation (augmented against centred training) and of each
downsampling against plain strided convolution. Whether the FCN performs as well: the matched
pair FCN against the classic max-pool CNN on test accuracy, only when both converged (a model
that under-fits says nothing about what its architecture can reach); and how much of the test
accuracy the centred test images carry: the FCN's centred test accuracy against its accuracy
over the shift set.
"""

from __future__ import annotations

from shiftlab.stats import LESS_UNRESOLVED, MORE_UNRESOLVED, decide
from shiftlab.study.results import StudyResults

from ..evidence import comparison, effect, effect_outcome, reference_condition, unpaired_difference
from .result import CONFIRMED, INCONCLUSIVE, NOT_MEASURED, PARTLY, REFUTED, ClaimResult

__all__ = ["UNDER_FITS", "evaluate", "performance_outcome"]

#: Outcome of a performance comparison where a model did not reach the target training accuracy.
UNDER_FITS = "under-fits"


def performance_outcome(results: StudyResults, pair_id: str, condition: str) -> str | None:
    """The test-accuracy outcome of a matched pair, :data:`UNDER_FITS` when either model did not
    converge in every seed, None when the pair was not measured."""
    c = comparison(results, pair_id, condition, "test_accuracy")
    if c is None:
        return None
    a, b = (results.analysis.cell(*key.split("|")) for key in (c.a, c.b))
    if any(cell is not None and cell.all_converged is False for cell in (a, b)):
        return UNDER_FITS
    return c.outcome


def evaluate(results: StudyResults) -> ClaimResult:
    ref = reference_condition(results)
    intervals, outcomes = {}, {}
    sources = {"head:gap-fc": ("head", "gap", "fc"), "condition:augmented-centred": ("condition", "augmented", "centred")}
    downs = list(dict.fromkeys(c.downsampling for c in results.analysis.cells))
    sources.update({f"downsampling:{d}-strided": ("downsampling", d, "strided") for d in downs if d != "strided"})
    for key, (factor, a, b) in sources.items():
        e = effect(results, "consistency", factor, a, b)
        if e is not None:
            intervals[key], outcomes[key] = e.interval, effect_outcome(results, e)
    perf = performance_outcome(results, "fcn_vs_classic", ref) if ref else None
    c = comparison(results, "fcn_vs_classic", ref, "test_accuracy") if ref else None
    if perf is not None and c is not None:
        intervals["fcn_vs_classic:test_accuracy"], outcomes["fcn_vs_classic:test_accuracy"] = c.interval, perf
    fcn = results.analysis.cell("strided_gap", ref) if ref else None
    if fcn is not None and "test_accuracy" in fcn.metrics and "accuracy" in fcn.metrics:
        diff = unpaired_difference(fcn.metrics["test_accuracy"], fcn.metrics["accuracy"])
        intervals["strided_gap:centred-shifted_accuracy"] = diff
        outcomes["strided_gap:centred-shifted_accuracy"] = decide(diff, results.analysis.margin)
    if not outcomes:
        return ClaimResult("C7", NOT_MEASURED, notes=("neither a balanced factorial nor the FCN / classic CNN pair "
                                                       "was measured",))
    elsewhere = [outcomes[k] for k in ("head:gap-fc", "condition:augmented-centred") if k in outcomes]
    source_ok = "more" in elsewhere
    source_some = MORE_UNRESOLVED in elsewhere  # above 0, not for sure by the margin
    source_bad = bool(elsewhere) and all(o in ("less", "about the same", LESS_UNRESOLVED) for o in elsewhere)
    # "more, size unresolved": above 0, so as accurate or more either way; "less, size unresolved":
    # below 0 but perhaps by less than the margin, so neither as well nor worse for sure
    perf_ok, perf_bad = perf in ("about the same", "more", MORE_UNRESOLVED), perf == "less"
    if perf_ok and source_ok:
        status = CONFIRMED
    elif perf_bad and source_bad:
        status = REFUTED
    elif perf_ok or source_ok or source_some or perf_bad or source_bad:
        status = PARTLY
    else:
        status = INCONCLUSIVE
    return ClaimResult("C7", status, {}, intervals, outcomes)
