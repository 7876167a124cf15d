"""The verdict's points: the question answered piece by piece, as typed results (no prose; the
text is rendered by :mod:`shiftlab.report.prose`). ``docs/study.md``, "Verdict".

- :class:`PairPoint`: a matched pair of the question (the FCN against the classic max-pool CNN,
  against a max-pool network with the same head, each against its anti-aliased twin) on
  consistency and conditional consistency; the outcome is the consistency comparison's.
- :class:`MechanismPoint`: why a model is (not) invariant: the aliasing signature (agreement at
  multiples of the total stride against other shifts) and the first downsampling layer's
  aligned / unaligned / interior errors.
- :class:`PerformancePoint`: a matched pair on test accuracy; "under-fits" instead of an outcome
  when either model did not reach the target training accuracy.
- :class:`EffectsPoint`: the factorial main effects and interactions, each with its decision.
- :class:`ClaimPoint`: what the transfer condition and the position probe show (claims C9, C8).
- :class:`CapacityPoint`: a matched pair at every width of the capacity sweep (centred): does the
  difference hold when both models are smaller or larger?
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from shiftlab.stats import Comparison, Effect, Interval, decide
from shiftlab.study.analysis import PAIRS, CellStats, Pair
from shiftlab.study.measurements import kind_distances
from shiftlab.study.results import StudyResults

from .claims import ClaimResult
from .claims.c7_sources import UNDER_FITS, performance_outcome
from .evidence import at_chance, comparison, effect_outcome, effects
from .layers import layer_profile
from .thresholds import ALIASING_VS_BLUR, BOUNDARY_RATIO, EXACT_ERROR_TOL

__all__ = ["CAPACITY_PAIRS", "CONTROL_PAIRS", "INVARIANCE_PAIRS", "NOT_MEASURED", "PERFORMANCE_PAIRS", "ClaimPoint",
           "EffectsPoint", "MechanismPoint", "PairPoint", "PerformancePoint", "CapacityPoint", "CapacityRow", "capacity_point",
           "effects_point", "mechanism_point", "pair_point", "performance_point"]

NOT_MEASURED = "not measured"
#: The pairs of the first half of the question, in answer order: (a), (b), (c).
INVARIANCE_PAIRS = ("fcn_vs_classic", "fcn_vs_maxpool_gap", "fcn_twin", "classic_twin", "maxpool_gap_twin",
                    "allcnn_vs_classic", "allcnn_vs_maxpool_gap", "allcnn_vs_fcn", "max_vs_avg", "blur_vs_learned",
                    "blur_vs_learnedblur")
#: The pairs of the second half (performance).
PERFORMANCE_PAIRS = ("fcn_vs_classic", "fcn_vs_maxpool_gap", "fcn_twin", "aa_fcn_vs_classic", "allcnn_vs_classic",
                     "allcnn_vs_maxpool_gap", "allcnn_vs_fcn", "max_vs_avg", "blur_vs_learned")
#: The support-matched controls (``docs/study.md``, "Controls"), in answer order.
CONTROL_PAIRS = ("max_vs_avg", "blur_vs_learned", "blur_vs_learnedblur")
#: The pairs the capacity sweep answers at every width.
CAPACITY_PAIRS = ("fcn_vs_classic", "fcn_vs_maxpool_gap", "fcn_twin")
_PAIRS = {p.id: p for p in PAIRS}
#: The model whose first downsampling layer (a BlurPool) is the per-layer aliasing test's reference.
ALIASING_REFERENCE = "blurstrided_gap"


def _cell_dict(cell: CellStats | None) -> dict | None:
    return None if cell is None else cell.to_dict()


@dataclass(frozen=True)
class PairPoint:
    """A matched pair on invariance in one condition.

    ``outcome``: the consistency comparison's outcome (``a`` against ``b``), or "not measured";
    ``trivial``: models at chance in this condition (a constant classifier is trivially invariant).
    """

    pair: Pair
    condition: str
    outcome: str
    a: CellStats | None
    b: CellStats | None
    consistency: Comparison | None
    conditional: Comparison | None
    trivial: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.pair.id

    def to_dict(self) -> dict:
        return {"kind": "pair", "id": self.id, "question": self.pair.question, "condition": self.condition,
                "outcome": self.outcome, "a": self.pair.a, "b": self.pair.b,
                "consistency": None if self.consistency is None else self.consistency.to_dict(),
                "conditional": None if self.conditional is None else self.conditional.to_dict(),
                "trivial": list(self.trivial)}


def pair_point(results: StudyResults, pair_id: str, condition: str) -> PairPoint:
    pair = _PAIRS[pair_id]
    a, b = results.analysis.cell(pair.a, condition), results.analysis.cell(pair.b, condition)
    cons = comparison(results, pair_id, condition, "consistency")
    cond = comparison(results, pair_id, condition, "consistency_correct")
    trivial = tuple(c.model for c in (a, b) if c is not None and at_chance(results, c))
    return PairPoint(pair, condition, NOT_MEASURED if cons is None else cons.outcome, a, b, cons, cond, trivial)


@dataclass(frozen=True)
class MechanismPoint:
    """Why ``model`` is or is not invariant, in one condition.

    ``aligned`` / ``unaligned``: agreement with the unshifted prediction at the non-zero multiples
    of the total stride ``stride`` / at other shifts, both at distance S when the cell has the
    distance-matched signature (else over all shifts of each kind); ``gap``: their difference,
    paired within each image (``aliasing_gap_matched``, else ``aliasing_gap``);
    ``aligned_distance`` / ``unaligned_distance``: the (mean) distance in px of the shifts of each
    kind (``kind_distances``; both S when matched); ``signature``: the decision on ``gap``;
    ``layer``: the first downsampling layer with its mean errors;
    ``reference_unaligned_interior_error``: the unaligned interior error of the first downsampling
    layer of :data:`ALIASING_REFERENCE` (the anti-aliased FCN's BlurPool) in the same condition;
    ``outcome``: "aliasing" (the layer's unaligned interior error at least ``ALIASING_VS_BLUR`` times
    the reference's), "boundary" (its full-map aligned error at least ``BOUNDARY_RATIO`` times its
    interior one), both, "neither", or "not measured" (``docs/definitions.md``, "Where it breaks").
    """

    model: str
    condition: str
    stride: int | None
    aligned: Interval | None
    unaligned: Interval | None
    gap: Interval | None
    aligned_distance: float | None
    unaligned_distance: float | None
    signature: str
    layer: str | None
    aligned_error: float | None
    aligned_interior_error: float | None
    unaligned_interior_error: float | None
    outcome: str
    reference_unaligned_interior_error: float | None = None

    @property
    def id(self) -> str:
        return f"mechanism:{self.model}"

    def to_dict(self) -> dict:
        intervals = ("aligned", "unaligned", "gap")
        d = {k: v for k, v in self.__dict__.items() if k not in intervals}
        d.update({k: None if getattr(self, k) is None else getattr(self, k).to_dict() for k in intervals})
        d.update(kind="mechanism", id=self.id)
        return d


def mechanism_point(results: StudyResults, model: str, condition: str) -> MechanismPoint:
    """The signature is the distance-matched one (``aligned_at_stride``, ``unaligned_at_stride``,
    ``aliasing_gap_matched``: both kinds at distance S) when the cell has it; results of the second
    design have only the unmatched one, read with the mean distances of its two kinds of shift."""
    cell = results.analysis.cell(model, condition)
    stride = next((r.total_stride for r in results.main_runs if r.model == model), None)
    matched = cell is not None and "aliasing_gap_matched" in cell.metrics
    names = ("aligned_at_stride", "unaligned_at_stride", "aliasing_gap_matched") if matched else (
        "aligned", "unaligned", "aliasing_gap")
    al, un, gap = (cell.metrics.get(n) if cell else None for n in names)  # gap: aligned - unaligned, paired per image
    signature = NOT_MEASURED if gap is None else decide(gap, results.analysis.margin)
    shifts = next((r.profile.shifts for r in results.main_runs
                   if r.model == model and r.condition == condition and r.profile is not None), None)
    far = near = None
    if matched:
        far = near = None if stride is None else float(stride)
    elif stride is not None and shifts:  # the shifts the cell was measured at (NaN: none of that kind)
        far, near = (None if math.isnan(d) else d for d in kind_distances(torch.tensor(shifts), stride))
    layer = next((entry for entry in layer_profile(results, model, condition) if entry.downsampling), None)
    full = layer.aligned_error if layer else None
    a_in = layer.aligned_interior_error if layer else None
    u_in = layer.unaligned_interior_error if layer else None
    reference = next((entry for entry in layer_profile(results, ALIASING_REFERENCE, condition) if entry.downsampling), None)
    ref_u = reference.unaligned_interior_error if reference else None
    if a_in is None or u_in is None or full is None or ref_u is None:
        outcome = NOT_MEASURED
    else:
        # aliasing: unaligned interior error well above the anti-aliased FCN's first downsampling layer
        # (a BlurPool at the same place in the same condition); a test the BlurPool itself fails
        found = [name for name, yes in (("aliasing", u_in >= ALIASING_VS_BLUR * max(ref_u, EXACT_ERROR_TOL)),
                                         ("boundary", full >= BOUNDARY_RATIO * max(a_in, EXACT_ERROR_TOL))) if yes]
        outcome = " and ".join(found) or "neither"
    return MechanismPoint(model, condition, stride, al, un, gap, far, near, signature, layer.name if layer else None,
                          full, a_in, u_in, outcome, ref_u)


@dataclass(frozen=True)
class PerformancePoint:
    """A matched pair on test accuracy in one condition. ``outcome``: the comparison's outcome,
    "under-fits" when a model did not reach the target training accuracy in every seed (then
    ``under_fitting`` names it), or "not measured"; ``shifted`` / ``worst_case``: the pair on
    accuracy averaged over the shift set and on worst-case accuracy (None: not measured)."""

    pair: Pair
    condition: str
    outcome: str
    a: CellStats | None
    b: CellStats | None
    accuracy: Comparison | None
    under_fitting: tuple[str, ...]
    target: float | None
    shifted: Comparison | None = None
    worst_case: Comparison | None = None

    @property
    def id(self) -> str:
        return f"performance:{self.pair.id}"

    def to_dict(self) -> dict:
        return {"kind": "performance", "id": self.id, "question": self.pair.question, "condition": self.condition,
                "outcome": self.outcome, "a": _cell_dict(self.a), "b": _cell_dict(self.b),
                "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
                "under_fitting": list(self.under_fitting), "target": self.target,
                **{k: None if getattr(self, k) is None else getattr(self, k).to_dict() for k in ("shifted", "worst_case")}}


def performance_point(results: StudyResults, pair_id: str, condition: str) -> PerformancePoint:
    pair = _PAIRS[pair_id]
    a, b = results.analysis.cell(pair.a, condition), results.analysis.cell(pair.b, condition)
    acc = comparison(results, pair_id, condition, "test_accuracy")
    outcome = performance_outcome(results, pair_id, condition) or NOT_MEASURED
    under = tuple(c.model for c in (a, b) if c is not None and c.all_converged is False) if outcome == UNDER_FITS else ()
    target = results.config.get("target_accuracy")
    return PerformancePoint(pair, condition, outcome, a, b, acc, under, target,
                            comparison(results, pair_id, condition, "accuracy"),
                            comparison(results, pair_id, condition, "worst_case"))


@dataclass(frozen=True)
class EffectsPoint:
    """The factorial effects on ``metric`` (main effects first), each with its decision against the
    margin; empty when the cells present do not form a balanced design."""

    metric: str
    effects: list[tuple[Effect, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"effects:{self.metric}"

    @property
    def outcome(self) -> str:
        return NOT_MEASURED if not self.effects else "measured"

    def to_dict(self) -> dict:
        return {"kind": "effects", "id": self.id, "metric": self.metric,
                "effects": [dict(e.to_dict(), outcome=o) for e, o in self.effects]}


def effects_point(results: StudyResults, metric: str) -> EffectsPoint:
    found = effects(results, metric, "main") + effects(results, metric, "interaction")
    return EffectsPoint(metric, [(e, effect_outcome(results, e)) for e in found])


@dataclass(frozen=True)
class ClaimPoint:
    """A point answered by a claim's evaluation (transfer: C9; position probe: C8)."""

    id: str
    result: ClaimResult

    @property
    def outcome(self) -> str:
        return self.result.status

    def to_dict(self) -> dict:
        return {"kind": "claim", "id": self.id, "outcome": self.outcome, "result": self.result.to_dict()}


@dataclass(frozen=True)
class CapacityRow:
    """A matched pair at one width: both cells, the consistency and test-accuracy comparisons, and
    the performance outcome ("under-fits" when either model did not reach the target)."""

    width: int
    a: CellStats | None
    b: CellStats | None
    consistency: Comparison | None
    accuracy: Comparison | None
    performance: str

    def to_dict(self) -> dict:
        return {"width": self.width, "a": _cell_dict(self.a), "b": _cell_dict(self.b),
                "consistency": None if self.consistency is None else self.consistency.to_dict(),
                "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
                "performance": self.performance}


@dataclass(frozen=True)
class CapacityPoint:
    """A matched pair across the capacity sweep's widths (centred).

    ``outcome``: the consistency outcome when it is the same at every width measured (e.g.
    "less"), "depends on width" when it differs, "not measured" without a sweep.
    """

    pair: Pair
    rows: tuple[CapacityRow, ...]
    outcome: str

    @property
    def id(self) -> str:
        return f"capacity:{self.pair.id}"

    def to_dict(self) -> dict:
        return {"kind": "capacity", "id": self.id, "question": self.pair.question, "outcome": self.outcome,
                "rows": [r.to_dict() for r in self.rows]}


def capacity_point(results: StudyResults, pair_id: str) -> CapacityPoint:
    pair, analysis = _PAIRS[pair_id], results.analysis
    rows = []
    for width in analysis.widths:
        a, b = analysis.capacity_cell(pair.a, width), analysis.capacity_cell(pair.b, width)
        cons = analysis.capacity_comparison(pair_id, width, "consistency")
        acc = analysis.capacity_comparison(pair_id, width, "test_accuracy")
        if cons is None and acc is None:
            continue
        under = any(c is not None and c.all_converged is False for c in (a, b))
        performance = NOT_MEASURED if acc is None else UNDER_FITS if under else acc.outcome
        rows.append(CapacityRow(width, a, b, cons, acc, performance))
    outcomes = {r.consistency.outcome for r in rows if r.consistency is not None}
    outcome = NOT_MEASURED if not outcomes else outcomes.pop() if len(outcomes) == 1 else "depends on width"
    return CapacityPoint(pair, tuple(rows), outcome)
