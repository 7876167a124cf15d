"""C1: a stride-1 convolution is translation equivariant, f(T x) = T f(x)
(``docs/definitions.md``, "Aligned error", "Interior error").

Read from the first layer of each trunk that keeps full resolution (a stride-1 Conv2d) under
circular shifts: its interior error (border band masked) must be exact; with zero padding the
full map is broken near the border only, with circular padding (the ``circular`` condition) the
full map is exact too.
"""

from __future__ import annotations

from shiftlab.study.results import StudyResults

from ..evidence import models, reference_condition
from ..layers import LayerSummary, layer_profile
from ..thresholds import EXACT_ERROR_TOL
from .result import CONFIRMED, NOT_MEASURED, PARTLY, REFUTED, ClaimResult

__all__ = ["evaluate"]


def _first_conv(layers: list[LayerSummary]) -> LayerSummary | None:
    return next((layer for layer in layers if layer.kind == "Conv2d" and layer.stride == (1.0, 1.0)), None)


def evaluate(results: StudyResults) -> ClaimResult:
    ref = reference_condition(results)
    numbers: dict[str, float | None] = {}
    for model in models(results):
        conv = _first_conv(layer_profile(results, model, ref)) if ref else None
        if conv is not None and conv.aligned_error is not None:
            numbers[f"{model}:full_error"] = conv.aligned_error
            numbers[f"{model}:interior_error"] = conv.aligned_interior_error
        circ = _first_conv(layer_profile(results, model, "circular"))
        if circ is not None and circ.aligned_error is not None:
            numbers[f"{model}:circular_full_error"] = circ.aligned_error
    interior = [v for k, v in numbers.items() if k.endswith(":interior_error") and v is not None]
    circular = [v for k, v in numbers.items() if k.endswith(":circular_full_error") and v is not None]
    if not interior and not circular:
        return ClaimResult("C1", NOT_MEASURED, notes=("no model has a stride-1 convolution with a per-layer profile",))
    numbers["interior_error_max"] = max(interior) if interior else None
    numbers["circular_full_error_max"] = max(circular) if circular else None
    full = [v for k, v in numbers.items() if k.endswith(":full_error") and v is not None]
    numbers["full_error_max"] = max(full) if full else None
    notes = () if circular else ("the circular-padding condition was not run",)
    if any(v > EXACT_ERROR_TOL for v in interior + circular):
        status = PARTLY if interior and all(v <= EXACT_ERROR_TOL for v in interior) else REFUTED
    else:
        status = CONFIRMED
    return ClaimResult("C1", status, numbers, notes=notes)
