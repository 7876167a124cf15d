"""What a claim's evaluator returns: a status and the numbers behind it (no prose; the text is
rendered by :mod:`shiftlab.report.prose`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shiftlab.stats import Interval

__all__ = ["CONFIRMED", "INCONCLUSIVE", "NOT_MEASURED", "PARTLY", "REFUTED", "STATUSES", "ClaimResult"]

CONFIRMED, REFUTED, PARTLY, INCONCLUSIVE, NOT_MEASURED = "confirmed", "refuted", "partly", "inconclusive", "not measured"
#: Every status a claim can have.
STATUSES = (CONFIRMED, REFUTED, PARTLY, INCONCLUSIVE, NOT_MEASURED)


@dataclass(frozen=True)
class ClaimResult:
    """A claim's measured status.

    Attributes:
        id: ``"C1"`` ... ``"C9"``.
        status: one of :data:`STATUSES`.
        numbers: named point values (keys ``"<model>:<quantity>"`` for per-model values); None
            where not defined.
        intervals: named 95% intervals (means of cells, or differences).
        outcomes: named decisions (:data:`shiftlab.stats.OUTCOMES`: ``"more"``, ``"less"``,
            ``"about the same"``, ``"more, size unresolved"``, ``"less, size unresolved"``,
            ``"inconclusive"``) of the differences in ``intervals``.
        notes: what the status rests on or why it could not be measured, as short facts.

    Example:
        >>> ClaimResult("C5", PARTLY, {"maxpool_fc:flip_rate": 0.2}).to_dict()["numbers"]
        {'maxpool_fc:flip_rate': 0.2}
    """

    id: str
    status: str
    numbers: dict[str, float | None] = field(default_factory=dict)
    intervals: dict[str, Interval] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def to_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "numbers": dict(self.numbers),
                "intervals": {k: v.to_dict() for k, v in self.intervals.items()}, "outcomes": dict(self.outcomes),
                "notes": list(self.notes)}
