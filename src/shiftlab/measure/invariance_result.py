"""What :func:`shiftlab.measure.invariance` returns (``docs/definitions.md``, "Invariance
metrics"): :class:`InvarianceResult`, and the caution that comes with it ("Degenerate
predictions"): the share of the predictions in the most frequent class and the mean top-1
probability, and :func:`degenerate_reason`, one sentence saying when the classifier is
near-constant or near-flat, so that its perfect scores mean nothing (a constant classifier is
trivially invariant).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor

from shiftlab.measure.certificate import Certificate

__all__ = ["DEGENERATE_FLAT_CONFIDENCE", "DEGENERATE_MAJORITY_SHARE", "InvarianceResult", "degenerate_reason"]

#: Share of the ``N |S|`` predictions in one class at or above which a classifier counts as
#: near-constant (with ``K >= 2`` classes). Whatever the model does with shifts, consistency is at
#: least ``share^2`` (per image ``sum_k p_k^2 >= p_maj^2``, and the mean of squares is at least the
#: square of the mean), so at 0.9 the consistency is >= 0.81 before any invariance is measured.
#: Not raised when labels are given and that share of the labels is itself in the predicted class
#: (images mostly of one class, predicted right).
DEGENERATE_MAJORITY_SHARE = 0.9

#: Mean top-1 probability, as a fraction of the way from a uniform guess (``1 / K``) to certainty
#: (1), below which the outputs count as near-flat: ``(mean_top1_prob - 1/K) / (1 - 1/K) < 0.05``
#: (for 10 classes a mean top-1 probability under 0.145). The class is then decided by tiny logit
#: differences, as in a randomly initialised network (the example CNNs of ``examples/cnn.py`` give
#: 0.108 to 0.116 for 10 classes), while trained classifiers sit far above it.
DEGENERATE_FLAT_CONFIDENCE = 0.05


@dataclass
class InvarianceResult:
    """Invariance of a classifier over a shift set. ``accuracy*`` fields are None without labels.

    ``predictions`` (``[N, |S|]`` int64 top-1 classes) is kept only when asked for
    (``keep_predictions=True``) and left out of :meth:`to_dict` unless asked for. ``method``: how
    the shift profile was obtained (``"exact"``: a forward pass per shift; ``"certified"``: one per
    residue modulo the total stride, by the polyphase certificate; ``"sampled"``: a random sample
    of shifts); ``certificate``: what the certificate checked, or why it does not hold (None when
    it was not tried); ``batch_size``: images per forward pass used; ``device``: where the model ran.

    Caution (``docs/definitions.md``, "Degenerate predictions"): ``class_counts`` (``[K]``, the
    ``N |S|`` predictions of every image at every shift, per class), ``majority_class`` and
    ``majority_class_share`` (its share of the ``N |S|`` predictions), ``mean_top1_prob`` (the mean
    softmax probability of the predicted class over the ``N |S|`` predictions; None when it was
    not accumulated) and ``degenerate``: None, or one sentence saying why the metrics above mean
    little (a near-constant or near-flat classifier), from :func:`degenerate_reason`.
    """

    mode: str
    shift_set: str
    shifts: list[tuple[float, float]]
    n_images: int
    n_classes: int
    consistency: float
    consistency_sem: float
    clean_consistency: float
    top1_prob_change: float
    flip_rate: float | None
    clean_consistency_by_shift: list[float] = field(default_factory=list)
    accuracy: float | None = None
    mean_accuracy: float | None = None
    worst_case_accuracy: float | None = None
    accuracy_by_shift: list[float] | None = None
    method: str = "exact"
    batch_size: int | None = None
    device: str | None = None
    certificate: Certificate | None = None
    class_counts: list[int] | None = None
    majority_class: int | None = None
    majority_class_share: float | None = None
    mean_top1_prob: float | None = None
    degenerate: str | None = None
    predictions: Tensor | None = field(default=None, repr=False)

    def to_dict(self, include_predictions: bool = False) -> dict[str, Any]:
        """JSON-safe dict (``json.dumps`` accepts it)."""
        out = asdict(self)
        out["shifts"] = [list(s) for s in self.shifts]
        out["predictions"] = self.predictions.tolist() if include_predictions and self.predictions is not None else None
        if not include_predictions:
            del out["predictions"]
        return out



def degenerate_reason(class_counts: Tensor | None, n_classes: int, mean_top1_prob: float | None = None,
                      label_counts: Tensor | None = None) -> str | None:
    """Why the invariance metrics of these predictions mean little, in one sentence, or None.

    ``docs/definitions.md``, "Degenerate predictions". Two cautions, for ``K >= 2`` classes:

    - *near-constant*: one class holds at least :data:`DEGENERATE_MAJORITY_SHARE` of the
      predictions ``class_counts`` (over every image and shift), unless labels are given
      (``label_counts``) and at least that share of them is that class too;
    - *near-flat*: ``mean_top1_prob`` (when known) is within :data:`DEGENERATE_FLAT_CONFIDENCE`
      of the way from ``1 / K`` to 1.

    Example:
        >>> import torch
        >>> degenerate_reason(torch.tensor([98, 2, 0]), 3)[:40]
        '98% of the 100 predictions are class 0: '
        >>> degenerate_reason(torch.tensor([50, 30, 20]), 3, mean_top1_prob=0.9) is None
        True
    """
    if n_classes < 2:
        return None
    reasons = []
    total = int(class_counts.sum()) if class_counts is not None else 0
    if class_counts is not None and total:
        top = int(class_counts.argmax())
        count = int(class_counts[top])
        share = count / total
        labels_agree = (label_counts is not None and int(label_counts.sum()) > 0
                        and int(label_counts[top]) / int(label_counts.sum()) >= DEGENERATE_MAJORITY_SHARE)
        if share >= DEGENERATE_MAJORITY_SHARE and not labels_agree:
            reasons.append(f"{100 * count // total}% of the {total} predictions are class {top}: "
                           "a near-constant classifier is trivially invariant")
    chance = 1.0 / n_classes
    if mean_top1_prob is not None and mean_top1_prob - chance < DEGENERATE_FLAT_CONFIDENCE * (1.0 - chance):
        reasons.append(f"the outputs are near-flat (mean top-1 probability {mean_top1_prob:.3f}, "
                       f"a uniform guess over {n_classes} classes gives {chance:.3f}): "
                       "tiny logit differences decide the class")
    if not reasons:
        return None
    return "; ".join(reasons) + (
        ". Measure a trained model on images it can tell apart (e.g. --data with shiftlab measure).")


