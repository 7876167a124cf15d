"""C3: global pooling is invariant, f(T x) = f(x) (``docs/definitions.md``, "Aligned error").

The pool's own invariance is isolated where its input is exactly equivariant: in the
``circular`` condition (circular padding, circular shifts) at shifts that are multiples of the
total stride S. There the pooled output must not change when the feature map before it moved.
"""

from __future__ import annotations

from shiftlab.study.results import StudyResults

from ..evidence import models
from ..layers import errors_at_shifts, layer_profile
from ..thresholds import EXACT_ERROR_TOL
from .result import CONFIRMED, INCONCLUSIVE, NOT_MEASURED, PARTLY, REFUTED, ClaimResult

__all__ = ["evaluate", "pool_errors"]


def pool_errors(results: StudyResults, model: str, condition: str) -> tuple[float, float, float | None] | None:
    """``(input error, pool error, pool error at other shifts)``: the largest errors over the
    cell's seeds at the non-zero multiples of the total stride, of the layer before the global
    pool and of the pool; None when the cell has no global pool in its profile."""
    layers = layer_profile(results, model, condition)
    i = next((k for k, layer in enumerate(layers) if layer.global_pool), None)
    if not i:
        return None
    run = next(r for r in results.main_runs if r.model == model and r.condition == condition and r.equivariance)
    s = run.total_stride
    before, _ = errors_at_shifts(results, model, condition, layers[i - 1].name, s)
    pool, other = errors_at_shifts(results, model, condition, layers[i].name, s)
    if not before or not pool:
        return None
    return max(before), max(pool), (max(other) if other else None)


def evaluate(results: StudyResults) -> ClaimResult:
    numbers: dict[str, float | None] = {}
    exact_input, ok = [], []
    for model in models(results):
        found = pool_errors(results, model, "circular")
        if found is None:
            continue
        before, pool, _ = found
        numbers[f"{model}:input_error"], numbers[f"{model}:pool_error"] = before, pool
        if before <= EXACT_ERROR_TOL:
            exact_input.append(model)
            ok.append(pool <= EXACT_ERROR_TOL)
    if not numbers:
        return ClaimResult("C3", NOT_MEASURED, notes=(
            "needs a global-pool model in the circular-padding condition (circular), where the features before the "
            "pool are exactly equivariant at multiples of the total stride",))
    if not exact_input:
        return ClaimResult("C3", INCONCLUSIVE, numbers, notes=(
            "no model's features before the pool were exactly equivariant, so the pool's own invariance is not isolated",))
    status = CONFIRMED if all(ok) else (REFUTED if not any(ok) else PARTLY)
    return ClaimResult("C3", status, numbers)
