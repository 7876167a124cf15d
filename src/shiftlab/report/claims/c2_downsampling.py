"""C2: downsampling by s is equivariant only to shifts that are multiples of s
(``docs/definitions.md``, "Aligned error", "Unaligned error").

Read from the first downsampling layer of each trunk (its input is the exactly equivariant
stride-1 stage, or the image): the interior error at shifts that are multiples of its stride must
be exact, and at other shifts at least :data:`ALIASING_RATIO` times larger (aliasing).
"""

from __future__ import annotations

from shiftlab.study.results import StudyResults

from ..evidence import models, reference_condition
from ..layers import layer_profile
from ..thresholds import ALIASING_RATIO, EXACT_ERROR_TOL
from .result import CONFIRMED, NOT_MEASURED, PARTLY, REFUTED, ClaimResult

__all__ = ["ADAPTIVE", "evaluate"]

#: Downsampling kinds that choose their sampling phase from the input (not a fixed decimation).
ADAPTIVE = ("aps",)


def evaluate(results: StudyResults) -> ClaimResult:
    ref = reference_condition(results)
    numbers: dict[str, float | None] = {}
    verdicts, notes = [], []
    for model in models(results):
        cell = results.analysis.cell(model, ref) if ref else None
        if cell is not None and cell.downsampling in ADAPTIVE:
            notes.append(f"{model} is not counted: adaptive polyphase sampling picks its phase from the input, by "
                         "design not a fixed decimation")
            continue
        layer = next((entry for entry in layer_profile(results, model, ref) if entry.downsampling), None) if ref else None
        if layer is None:
            continue
        aligned = layer.aligned_interior_error if layer.aligned_interior_error is not None else layer.aligned_error
        unaligned = (layer.unaligned_interior_error if layer.unaligned_interior_error is not None
                     else layer.unaligned_error)
        if aligned is None or unaligned is None:
            continue
        numbers[f"{model}:aligned_error"] = aligned
        numbers[f"{model}:unaligned_error"] = unaligned
        numbers[f"{model}:stride"] = layer.stride[1]
        verdicts.append(aligned <= EXACT_ERROR_TOL and unaligned >= ALIASING_RATIO * max(aligned, EXACT_ERROR_TOL))
    if not verdicts:
        return ClaimResult("C2", NOT_MEASURED, notes=tuple(notes) or (
            "no downsampling layer was measured at aligned and unaligned shifts",))
    numbers["layers"], numbers["layers_ok"] = float(len(verdicts)), float(sum(verdicts))
    status = CONFIRMED if all(verdicts) else (REFUTED if not any(verdicts) else PARTLY)
    return ClaimResult("C2", status, numbers, notes=tuple(notes))
