"""Read the evidence the claims and the verdict use out of a study's :class:`Analysis`: cells,
matched-pair comparisons, factorial effects with their decisions, and conservative contrasts
between two cells the analysis did not pair (``docs/definitions.md``, "Intervals")."""

from __future__ import annotations

from shiftlab.stats import Comparison, Effect, Interval, decide
from shiftlab.study.analysis import CellStats
from shiftlab.study.conditions import split_classes
from shiftlab.study.results import StudyResults

from .thresholds import CHANCE_MARGIN

__all__ = ["BASELINES", "REFERENCE", "at_chance", "cells", "chance_level", "comparison", "effect", "effect_outcome",
           "effects", "models", "oriented", "reference_condition", "unpaired_difference", "versus"]

#: The condition where any invariance must come from the architecture.
REFERENCE = "centred"
#: The level each factor's effects are measured against (plain decimation, FC head, centred training).
BASELINES = {"downsampling": "strided", "head": "fc", "condition": "centred"}


def models(results: StudyResults) -> list[str]:
    """The study's models, in the config's order."""
    present = {c.model for c in results.analysis.cells}
    return [m for m in results.config.get("models", []) if m in present] + sorted(
        present - set(results.config.get("models", [])))


def reference_condition(results: StudyResults) -> str | None:
    """``centred`` when measured, else the first measured canvas condition (None: none)."""
    conds = [c for c in ("centred", "augmented", "circular") if cells(results, c)]
    return conds[0] if conds else None


def cells(results: StudyResults, condition: str) -> list[CellStats]:
    """The cells of ``condition``, in model order."""
    order = {m: i for i, m in enumerate(models(results))}
    return sorted((c for c in results.analysis.cells if c.condition == condition), key=lambda c: order[c.model])


def comparison(results: StudyResults, pair_id: str, condition: str, metric: str) -> Comparison | None:
    """The matched pair ``pair_id`` (:data:`shiftlab.study.analysis.PAIRS`) in ``condition``, or None."""
    return results.analysis.comparison(pair_id, condition, metric)


def _negated(iv: Interval) -> Interval:
    return Interval(-iv.estimate, -iv.high, -iv.low, iv.level, iv.n_boot)


def effect(results: StudyResults, metric: str, factor: str, a: str, b: str) -> Effect | None:
    """The main effect ``a`` minus ``b`` of ``factor`` on ``metric`` (sign-flipped when the analysis
    computed ``b`` minus ``a``), or None when the design lacks it."""
    for e in results.analysis.effects:
        if e.kind == "main" and e.metric == metric and e.factors == (factor,):
            if e.levels[0] == (a, b):
                return e
            if e.levels[0] == (b, a):
                return Effect("main", e.factors, ((a, b),), metric, _negated(e.interval))
    return None


def oriented(e: Effect) -> Effect:
    """``e`` with each factor's levels ordered as "level vs baseline" (:data:`BASELINES`), the sign
    of the interval following (a swapped pair flips it; two swapped pairs of an interaction cancel).

    Example:
        >>> e = Effect("main", ("head",), (("fc", "gap"),), "consistency", Interval(-0.3, -0.4, -0.2))
        >>> oriented(e).levels, oriented(e).interval.estimate
        ((('gap', 'fc'),), 0.3)
    """
    levels, flips = [], 0
    for factor, (a, b) in zip(e.factors, e.levels, strict=True):
        if a == BASELINES.get(factor):
            a, b = b, a
            flips += 1
        levels.append((a, b))
    interval = _negated(e.interval) if flips % 2 else e.interval
    return Effect(e.kind, e.factors, tuple(levels), e.metric, interval)


def effects(results: StudyResults, metric: str, kind: str | None = None) -> list[Effect]:
    """Every effect on ``metric`` (of ``kind`` "main" or "interaction" when given), in analysis
    order, :func:`oriented` against the baselines."""
    return [oriented(e) for e in results.analysis.effects if e.metric == metric and (kind is None or e.kind == kind)]


def effect_outcome(results: StudyResults, e: Effect) -> str:
    """The outcome (:data:`shiftlab.stats.OUTCOMES`) of an effect against the margin."""
    return decide(e.interval, results.analysis.margin)


def unpaired_difference(a: Interval, b: Interval) -> Interval:
    """A conservative interval of ``a - b`` from the two cells' own intervals, for cells the
    analysis did not pair (the same model under two conditions): ``[a.low - b.high, a.high - b.low]``.

    Its width is the sum of the two widths, wider than a paired interval of positively correlated
    cells, so a decision from it errs towards "inconclusive" (or towards a size left unresolved).

    Example:
        >>> d = unpaired_difference(Interval(0.8, 0.75, 0.85), Interval(0.5, 0.45, 0.55))
        >>> round(d.estimate, 3), round(d.low, 3), round(d.high, 3)
        (0.3, 0.2, 0.4)
    """
    return Interval(a.estimate - b.estimate, a.low - b.high, a.high - b.low, a.level, min(a.n_boot, b.n_boot))


def versus(iv: Interval, value: float) -> Interval:
    """``iv`` minus a constant (e.g. chance).

    Example:
        >>> versus(Interval(0.9, 0.8, 1.0), 0.5).low
        0.30000000000000004
    """
    return Interval(iv.estimate - value, iv.low - value, iv.high - value, iv.level, iv.n_boot)


def chance_level(results: StudyResults, condition: str) -> float:
    """1 / the number of classes a cell of ``condition`` chooses from."""
    if condition.startswith("probe"):
        return 0.5
    k = len(results.meta.classes)
    if condition.startswith("transfer"):
        k = len(split_classes(k)[1])
    return 1.0 / k


def at_chance(results: StudyResults, cell: CellStats) -> bool:
    """Is the cell's test accuracy within :data:`CHANCE_MARGIN` of chance (a near-constant classifier)?"""
    acc = cell.metrics.get("test_accuracy")
    return acc is not None and acc.estimate <= chance_level(results, cell.condition) + CHANCE_MARGIN
