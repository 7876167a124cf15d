"""The claims made in answers to the question (C1-C9), as a registry of small evaluators.

Each evaluator reads a study's typed results and returns a :class:`ClaimResult` (a status and the
numbers, intervals and decisions behind it); :mod:`shiftlab.report.prose` writes the sentences.
The claims and their expected truth are listed in ``docs/study.md``, "Claims".

Example::

    from shiftlab.study.results import load_results
    from shiftlab.report.claims import evaluate_claims
    for r in evaluate_claims(load_results("runs/study")):
        print(r.id, r.status)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shiftlab.study.results import StudyResults

from . import (
    c1_convolution,
    c2_downsampling,
    c3_global_pool,
    c4_stack,
    c5_maxpool,
    c6_head,
    c7_sources,
    c8_position,
    c9_transfer,
)
from .result import CONFIRMED, INCONCLUSIVE, NOT_MEASURED, PARTLY, REFUTED, STATUSES, ClaimResult

__all__ = ["CLAIMS", "CONFIRMED", "INCONCLUSIVE", "NOT_MEASURED", "PARTLY", "REFUTED", "STATUSES", "Claim",
           "ClaimResult", "claim", "evaluate_claims"]


@dataclass(frozen=True)
class Claim:
    """A claim: its id, what it says, the expected truth, and its evaluator."""

    id: str
    text: str
    expected: str
    evaluate: Callable[[StudyResults], ClaimResult]


#: The claims in order.
CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "A stride-1 convolution is translation equivariant: f(T x) = T f(x).",
          "exact with circular padding; zero padding breaks it only near the border", c1_convolution.evaluate),
    Claim("C2", "Downsampling by s (strided convolution, pooling) is equivariant only to shifts that are multiples "
          "of s.", "exact at multiples of s; other shifts alias", c2_downsampling.evaluate),
    Claim("C3", "Global pooling is invariant: f(T x) = f(x).", "exact for global average and global max pooling",
          c3_global_pool.evaluate),
    Claim("C4", "A stack of equivariant layers is equivariant; with a global pool at the end the classifier is "
          "invariant.", "to the shifts that are multiples of the total stride S", c4_stack.evaluate),
    Claim("C5", "Max-pooling creates translation invariance.", "only local and partial: a 1-px shift can still "
          "change the output", c5_maxpool.evaluate),
    Claim("C6", "An FCN is a CNN without fully connected layers and can do everything a CNN can.",
          "an FC head over a flattened map is not shift invariant; a global pool is", c6_head.evaluate),
    Claim("C7", "FCNs perform as well because their invariance comes from elsewhere.",
          "data augmentation, global pooling and the dataset's own centring; measure which", c7_sources.evaluate),
    Claim("C8", "Zero padding lets a network see absolute position (Kayhan & van Gemert).",
          "a class decided by position alone is learnable with zero padding, not with circular padding",
          c8_position.evaluate),
    Claim("C9", "Invariance can be learned from translated data and transfers to new classes (Biscione & Bowers).",
          "measured: classes trained only at the centre, tested everywhere", c9_transfer.evaluate),
)


def claim(claim_id: str) -> Claim:
    """The :class:`Claim` with id ``claim_id``."""
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise KeyError(f"no claim {claim_id!r}; the claims are {[c.id for c in CLAIMS]}")


def evaluate_claims(results: StudyResults) -> list[ClaimResult]:
    """Every claim's result, in :data:`CLAIMS` order."""
    return [c.evaluate(results) for c in CLAIMS]
