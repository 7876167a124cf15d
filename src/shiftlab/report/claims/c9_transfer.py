"""C9 (Biscione & Bowers 2021): invariance learned from translated data transfers to new classes
(``docs/study.md``, "Conditions": transfer).

Per model, on the held-out classes (trained only at the centre, measured everywhere): consistency
after a trunk trained on translated objects of the other classes (``transfer``) against a trunk
trained on centred ones (``transfer_control``), as the analysis' paired contrast ``transfer``
(the same held-out images and seeds in both cells).
Cells at chance (a constant classifier is trivially invariant) are not counted. For each side the
numbers hold the mean final training accuracy (``<model>:<side>:train_accuracy``) and how many seeds
stopped below the target (``<model>:<side>:under_fit_seeds``): a new head that under-fits sees
fewer classes right at the centre, so the prose marks those contrasts.
"""

from __future__ import annotations

from shiftlab.stats import LESS_UNRESOLVED, MORE_UNRESOLVED
from shiftlab.study.results import StudyResults

from ..evidence import at_chance, models
from .result import CONFIRMED, INCONCLUSIVE, NOT_MEASURED, PARTLY, REFUTED, ClaimResult

__all__ = ["evaluate"]


def evaluate(results: StudyResults) -> ClaimResult:
    intervals, outcomes, notes = {}, {}, []
    numbers: dict[str, float | None] = {}
    for model in models(results):
        t, c = results.analysis.cell(model, "transfer"), results.analysis.cell(model, "transfer_control")
        if t is None or c is None or "consistency" not in t.metrics or "consistency" not in c.metrics:
            continue
        trivial = [cell.condition for cell in (t, c) if at_chance(results, cell)]
        if trivial:
            notes.append(f"{model} is at chance in {' and '.join(trivial)}: trivially invariant, not counted")
            continue
        for side, cell in (("transfer", t), ("control", c)):
            numbers[f"{model}:{side}:train_accuracy"] = cell.final_train_accuracy
            numbers[f"{model}:{side}:under_fit_seeds"] = (None if cell.converged is None
                                                          else float(cell.n_seeds - cell.converged))
        for metric in ("consistency", "accuracy"):
            paired = results.analysis.condition_comparison("transfer", model, metric)
            if paired is not None:
                intervals[f"{model}:transfer:{metric}"] = t.metrics[metric]
                intervals[f"{model}:control:{metric}"] = c.metrics[metric]
                intervals[f"{model}:{metric}"], outcomes[f"{model}:{metric}"] = paired.interval, paired.outcome
    found = [o for k, o in outcomes.items() if k.endswith(":consistency")]
    if not found:
        return ClaimResult("C9", NOT_MEASURED, notes=tuple(notes) or ("transfer and transfer_control were not both run",))
    if all(o == "more" for o in found):
        status = CONFIRMED
    elif "more" in found or MORE_UNRESOLVED in found:  # some transfer (not for sure by the margin: in part)
        status = PARTLY
    elif all(o in ("about the same", "less", LESS_UNRESOLVED) for o in found):
        status = REFUTED
    else:
        status = INCONCLUSIVE
    numbers["target_accuracy"] = results.config.get("target_accuracy")
    return ClaimResult("C9", status, numbers, intervals, outcomes, tuple(notes))
