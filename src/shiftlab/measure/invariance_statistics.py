"""Sufficient statistics of invariance (``docs/definitions.md``, "Sufficient statistics").

:func:`invariance_update` turns one block of images, seen at every shift of ``S``, into
:class:`InvarianceStats`, sums that add up (``+``) across blocks and processes in any order;
:func:`invariance_compute` turns the total into an
:class:`~shiftlab.measure.invariance_result.InvarianceResult`. Every count is an integer, so
merged statistics are exact whatever the order; only the probability change and the top-1
probability are float sums.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from shiftlab.measure.invariance_result import InvarianceResult, degenerate_reason
from shiftlab.measure.shiftsets import ShiftSet

__all__ = ["InvarianceStats", "consistency_from_predictions", "invariance_compute", "invariance_update"]

@dataclass
class InvarianceStats:
    """Sufficient statistics of invariance over a shift set of ``n_shifts`` shifts.

    Sums over images (integers unless noted), so ``a + b`` is the statistics of both sets of
    images, in any order and from any process:

    - ``n_images``; ``consistency_sum`` = ``sum_i sum_k n_ik^2`` and ``consistency_sq_sum`` =
      ``sum_i (sum_k n_ik^2)^2`` (consistency ``= consistency_sum / (N |S|^2)``);
    - ``clean_agree`` ``[S]``: images whose class at each shift is their unshifted class;
    - ``prob_change_sum`` (float64): ``sum_i sum_d |p_{c(x_i)}(T_d x_i) - p_{c(x_i)}(x_i)|``;
    - ``flips`` over ``flip_pairs`` image-step pairs (the unit steps inside ``S``);
    - with labels: ``clean_correct``, ``correct`` ``[S]`` and ``all_correct`` (images right at
      every shift); ``labelled`` tells whether labels were given;
    - ``class_counts`` ``[K]`` (int64): the predictions over all (image, shift) pairs, per class;
      with labels ``label_counts`` ``[K]``: the labels per class;
    - ``top1_prob_sum`` (float64): the sum of the top-1 softmax probabilities over the
      ``top1_prob_count`` (image, shift) pairs where they were given (all of them, or the mean
      top-1 probability is unknown);
    - ``predictions``: ``(first image index, [n, S] classes)`` blocks, only when kept.
    """

    n_shifts: int
    n_classes: int
    n_images: int = 0
    consistency_sum: int = 0
    consistency_sq_sum: int = 0
    clean_agree: Tensor | None = None
    prob_change_sum: float = 0.0
    flips: int = 0
    flip_pairs: int = 0
    labelled: bool = False
    clean_correct: int = 0
    correct: Tensor | None = None
    all_correct: int = 0
    predictions: list[tuple[int, Tensor]] = field(default_factory=list, repr=False)
    class_counts: Tensor | None = None
    label_counts: Tensor | None = None
    top1_prob_sum: float = 0.0
    top1_prob_count: int = 0

    def __add__(self, other: InvarianceStats) -> InvarianceStats:
        if (self.n_shifts, self.n_classes, self.labelled) != (other.n_shifts, other.n_classes, other.labelled):
            raise ValueError(
                "cannot add invariance statistics of different measurements: "
                f"{self.n_shifts} vs {other.n_shifts} shifts, {self.n_classes} vs {other.n_classes} classes, "
                f"labels {self.labelled} vs {other.labelled}")
        return InvarianceStats(
            self.n_shifts, self.n_classes, self.n_images + other.n_images,
            self.consistency_sum + other.consistency_sum, self.consistency_sq_sum + other.consistency_sq_sum,
            _add(self.clean_agree, other.clean_agree), self.prob_change_sum + other.prob_change_sum,
            self.flips + other.flips, self.flip_pairs + other.flip_pairs, self.labelled,
            self.clean_correct + other.clean_correct, _add(self.correct, other.correct),
            self.all_correct + other.all_correct, self.predictions + other.predictions,
            class_counts=_add(self.class_counts, other.class_counts),
            label_counts=_add(self.label_counts, other.label_counts),
            top1_prob_sum=self.top1_prob_sum + other.top1_prob_sum,
            top1_prob_count=self.top1_prob_count + other.top1_prob_count)


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None or b is None:
        return a if b is None else b
    return a + b


def consistency_from_predictions(predictions: Tensor, n_classes: int) -> Tensor:
    """Per-image consistency ``sum_k (n_k / S)^2`` from top-1 classes ``[N, S]`` -> ``[N]``."""
    return _squared_counts(predictions, n_classes).to(torch.float64) / predictions.shape[1] ** 2


def _squared_counts(predictions: Tensor, n_classes: int) -> Tensor:
    """``sum_k n_k^2`` per image (int64) from classes ``[N, S]``."""
    counts = torch.zeros(predictions.shape[0], n_classes, dtype=torch.long)
    counts.scatter_add_(1, predictions, torch.ones_like(predictions))
    return (counts * counts).sum(dim=1)


def invariance_update(
    predictions: Tensor,
    clean_predictions: Tensor,
    prob_change: Tensor,
    *,
    n_classes: int,
    flip_pairs: Tensor,
    labels: Tensor | None = None,
    keep_predictions: bool = False,
    first_index: int = 0,
    top1_prob: Tensor | None = None,
) -> InvarianceStats:
    """The statistics of one block of ``n`` images, each seen at every shift of ``S``.

    Args:
        predictions: ``[n, S]`` top-1 classes at each shift.
        clean_predictions: ``[n]`` top-1 classes of the unshifted images.
        prob_change: ``[n, S]`` ``|p_{c(x)}(T_d x) - p_{c(x)}(x)|`` (float64).
        n_classes: ``K``.
        flip_pairs: ``[P, 2]`` indices of unit steps inside ``S`` (``ShiftSet.unit_step_pairs``).
        labels: optional ``[n]`` classes.
        keep_predictions: keep ``predictions`` (as the block starting at ``first_index``).
        top1_prob: optional ``[n, S]`` softmax probability of the predicted class at each shift,
            for ``mean_top1_prob`` (near-flat outputs); without it that caution is not computed.

    Example:
        >>> p = torch.tensor([[0, 0, 1], [2, 2, 2]])
        >>> s = invariance_update(p, torch.tensor([0, 2]), torch.zeros(2, 3, dtype=torch.float64), n_classes=3,
        ...                       flip_pairs=torch.tensor([[0, 1], [1, 2]]))
        >>> invariance_compute(s).consistency  # ((2/3)^2 + (1/3)^2 + 1) / 2
        0.7777777777777778
    """
    n, n_shifts = predictions.shape
    squared = _squared_counts(predictions, n_classes)
    stats = InvarianceStats(
        n_shifts, n_classes, n, int(squared.sum()), int((squared * squared).sum()),
        (predictions == clean_predictions[:, None]).sum(dim=0), float(prob_change.sum()),
        int((predictions[:, flip_pairs[:, 0]] != predictions[:, flip_pairs[:, 1]]).sum()) if flip_pairs.numel() else 0,
        n * flip_pairs.shape[0])
    stats.class_counts = torch.bincount(predictions.flatten(), minlength=n_classes)
    if top1_prob is not None:
        stats.top1_prob_sum, stats.top1_prob_count = float(top1_prob.to(torch.float64).sum()), top1_prob.numel()
    if labels is not None:
        correct = predictions == labels[:, None]
        stats.label_counts = torch.bincount(labels[(labels >= 0) & (labels < n_classes)], minlength=n_classes)
        stats.labelled = True
        stats.clean_correct = int((clean_predictions == labels).sum())
        stats.correct = correct.sum(dim=0)
        stats.all_correct = int(correct.all(dim=1).sum())
    if keep_predictions:
        stats.predictions = [(first_index, predictions.clone())]
    return stats


def invariance_compute(stats: InvarianceStats, shift_set: ShiftSet | None = None, *, mode: str = "circular",
                       method: str = "exact") -> InvarianceResult:
    """The :class:`InvarianceResult` of accumulated statistics (``shift_set`` names the shifts)."""
    n, s = stats.n_images, stats.n_shifts
    if n == 0 or stats.clean_agree is None:  # every block of images sets clean_agree
        raise ValueError("no images were measured: the statistics are empty")
    mean_sq = stats.consistency_sum / n
    var = (stats.consistency_sq_sum - n * mean_sq * mean_sq) / (n - 1) if n > 1 else 0.0
    result = InvarianceResult(
        mode=mode,
        shift_set=shift_set.label if shift_set is not None else f"{s} shifts",
        shifts=[(dy, dx) for dy, dx in shift_set.as_tuples()] if shift_set is not None else [],
        n_images=n,
        n_classes=stats.n_classes,
        consistency=stats.consistency_sum / (n * s * s),
        consistency_sem=math.sqrt(max(var, 0.0) / n) / (s * s),
        clean_consistency=float(stats.clean_agree.sum()) / (n * s),
        clean_consistency_by_shift=(stats.clean_agree.to(torch.float64) / n).tolist(),
        top1_prob_change=stats.prob_change_sum / (n * s),
        flip_rate=stats.flips / stats.flip_pairs if stats.flip_pairs else None,
        method=method,
    )
    if stats.labelled and stats.correct is not None:  # a labelled block sets correct
        result.accuracy = stats.clean_correct / n
        result.mean_accuracy = float(stats.correct.sum()) / (n * s)
        result.worst_case_accuracy = stats.all_correct / n
        result.accuracy_by_shift = (stats.correct.to(torch.float64) / n).tolist()
    if stats.class_counts is not None:
        counts = stats.class_counts
        result.class_counts = counts.tolist()
        result.majority_class = int(counts.argmax())
        result.majority_class_share = int(counts.max()) / (n * s)
    if stats.top1_prob_count == n * s:
        result.mean_top1_prob = stats.top1_prob_sum / (n * s)
    result.degenerate = degenerate_reason(stats.class_counts, stats.n_classes, result.mean_top1_prob,
                                          stats.label_counts)
    if stats.predictions:
        result.predictions = torch.cat([p for _, p in sorted(stats.predictions, key=lambda b: b[0])])
    return result


