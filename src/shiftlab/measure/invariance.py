"""Shift invariance of a classifier's predictions (``docs/definitions.md``, "Invariance metrics").

For images ``x_1..x_N`` and a shift set ``S`` (used uniformly), with top-1 class ``c``:

- **consistency** = mean over images of ``sum_k (n_k / |S|)^2``, ``n_k`` the number of shifts in
  ``S`` at which the image is classified ``k``: exactly the probability that two shifts drawn
  independently from ``U(S)`` agree (Zhang 2019's consistency, computed without sampling);
- **clean consistency** = ``P_{a ~ U(S)}[c(T_a x) = c(x)]``, also per shift;
- **accuracy** (unshifted), **accuracy by shift** ``acc(d)``, **mean shifted accuracy**;
- **worst-case accuracy** = fraction of images classified correctly at *every* ``d`` in ``S``;
- **flip rate** = ``P[c(T_d x) != c(T_{d+e} x)]`` over the unit steps ``e`` inside ``S``
  (Azulay & Weiss 2019);
- **top-1 probability change** = mean ``|p_{c(x)}(T_d x) - p_{c(x)}(x)|``.

A **caution** comes with every result (``docs/definitions.md``, "Degenerate predictions"): the
share of the ``N |S|`` predictions in the most frequent class and the mean top-1 probability;
``degenerate`` says in one sentence when the classifier is near-constant or near-flat, so that
its perfect scores mean nothing (a constant classifier is trivially invariant).

Functional core (``docs/definitions.md``, "Sufficient statistics"): :func:`invariance_update`
turns one block of images, seen at every shift of ``S``, into :class:`InvarianceStats`, sums that
add up (``+``) across blocks and processes in any order; :func:`invariance_compute` turns the
total into an :class:`InvarianceResult`. Every count is an integer, so merged statistics are
exact whatever the order; only the probability change is a float sum.
:func:`invariance` is the thin wrapper that runs a model (:mod:`shiftlab.measure.driver`); under
an initialised ``torch.distributed`` process group it measures this rank's shard of the images
and adds the statistics of every rank (:mod:`shiftlab.measure.distributed`,
``docs/distributed.md``). :func:`invariance_stats` gives the statistics of one process's images
alone (what ``shiftlab.metrics`` accumulates batch by batch).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from shiftlab.measure.certificate import CHECK_IMAGES, Certificate, residue_plan
from shiftlab.measure.certificate import certify as certify_premise
from shiftlab.measure.distributed import all_or_none, first_rank, local_module
from shiftlab.measure.driver import BatchSize, Chunk, ProgressFn, RunInfo, check_inputs, measure_sharded, run_chunks
from shiftlab.measure.onnx_runner import OnnxRunner
from shiftlab.measure.runner import Runner, TorchRunner, make_runner
from shiftlab.measure.shiftsets import ShiftSet, ShiftSpec, as_shift_set
from shiftlab.measure.validation import check_finite_output, check_labels

__all__ = ["DEGENERATE_FLAT_CONFIDENCE", "DEGENERATE_MAJORITY_SHARE", "InvarianceResult", "InvarianceStats",
           "binary_logits", "consistency_from_predictions", "degenerate_reason", "invariance", "invariance_compute",
           "invariance_stats", "invariance_update"]

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
    if n == 0:
        raise ValueError("no images were measured: the statistics are empty")
    mean_sq = stats.consistency_sum / n
    var = (stats.consistency_sq_sum - n * mean_sq * mean_sq) / (n - 1) if n > 1 else 0.0
    result = InvarianceResult(
        mode=mode,
        shift_set=shift_set.label if shift_set is not None else f"{s} shifts",
        shifts=shift_set.as_tuples() if shift_set is not None else [],
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
    if stats.labelled:
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
        >>> degenerate_reason(torch.tensor([98, 2, 0]), 3)[:40]
        '98% of the 100 predictions are class 0: '
        >>> degenerate_reason(torch.tensor([50, 30, 20]), 3, mean_top1_prob=0.9) is None
        True
    """
    if n_classes < 2:
        return None
    reasons = []
    total = int(class_counts.sum()) if class_counts is not None else 0
    if total:
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


def binary_logits(logits: Tensor) -> Tensor:
    """``logits`` ``[N, K]``; a single logit ``z`` (``K = 1``, a binary classifier whose decision is
    ``z > 0``, its probability ``sigmoid(z)``) as the two logits ``[0, z]``: their argmax is class 1
    exactly when ``z > 0`` and their softmax is ``[1 - sigmoid(z), sigmoid(z)]``, so a binary
    classifier is measured as one of two classes (``docs/definitions.md``, "Binary classifiers").

    Example:
        >>> binary_logits(torch.tensor([[2.0], [-1.0]])).argmax(dim=1).tolist()
        [1, 0]
    """
    if logits.shape[-1] != 1:
        return logits
    return torch.cat([torch.zeros_like(logits), logits], dim=-1)


def _check_logits(out: object, batch: int, n_classes: int | None) -> Tensor:
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != batch:
        if isinstance(out, Tensor):  # the pass's batch size is shiftlab's, not the user's: N when it matches
            dims = ["N" if k == 0 and d == batch else str(d) for k, d in enumerate(out.shape)]
            got = f"a tensor of shape ({', '.join(dims)}{',' if len(dims) == 1 else ''})" + (
                "" if out.dim() and out.shape[0] == batch else ", whose first dimension is not the images")
        else:
            got = (f"a {type(out).__name__}; return one tensor of logits (wrap the model: class Logits(nn.Module): "
                   "def forward(self, x): return model(x)[...])" if isinstance(out, (tuple, list, dict))
                   else f"a {type(out).__name__}")
        raise ValueError(
            f"invariance() needs a classifier whose output is one tensor [N, classes]; got {got}. For a dense "
            "(map) output use shiftlab.equivariance()"
        )
    if not (out.is_floating_point() or out.is_complex()):
        raise TypeError(f"the model's output is {out.dtype}; shiftlab needs floating-point outputs (logits or feature "
                        "maps): return them before any rounding or argmax")
    if n_classes is not None and out.shape[1] != n_classes:
        raise ValueError(
            f"the model's output shape depends on the input: {n_classes} classes for one batch, {out.shape[1]} for "
            "another; invariance needs a fixed [N, classes] output"
        )
    check_finite_output(out)
    return out


def _check_label_range(labels: Tensor, n_classes: int) -> None:
    """Labels must be classes the model outputs (``0 .. K - 1``); else accuracy would silently be 0."""
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= n_classes:
        raise ValueError(f"labels hold class {high if high >= n_classes else low} but the model outputs {n_classes} "
                         f"classes (0..{n_classes - 1}); give labels as class indices of the model's output")


class _Accumulator:
    """Turns chunks of logits into block tables (classes, probability changes and top-1
    probabilities ``[n, S]``, so memory is bounded by a block), and each finished block into
    :class:`InvarianceStats`.

    ``labels`` are those of all the images of the measurement and ``offset`` is the index of the
    first image run here (a process's shard): every process checks every label, and the kept
    predictions carry their index in the whole set.
    """

    def __init__(self, n_shifts: int, labels: Tensor | None, keep: bool, pairs: Tensor,
                 expand: Tensor | None = None, offset: int = 0) -> None:
        self.n_shifts, self.labels, self.keep, self.pairs, self.expand = n_shifts, labels, keep, pairs, expand
        self.offset = offset
        self.total: InvarianceStats | None = None
        self.block = -1  # first image index of the block in the tables
        self.preds = self.change = self.top1 = torch.empty(0)

    def __call__(self, chunk: Chunk) -> None:
        clean = chunk.clean
        clean_pred = clean.argmax(dim=1)
        if self.block != chunk.start:
            if self.block < 0 and self.labels is not None:
                _check_label_range(self.labels, clean.shape[1])
            self.block = chunk.start
            self.preds = torch.empty(chunk.n, self.n_shifts, dtype=torch.long)
            self.change = torch.empty(chunk.n, self.n_shifts, dtype=torch.float64)
            self.top1 = torch.empty(chunk.n, self.n_shifts, dtype=torch.float64)
        clean_prob = clean.softmax(dim=1).gather(1, clean_pred[:, None])[:, 0]
        logits = chunk.outputs  # [s, n, K]
        soft = logits.softmax(dim=2)
        probs = soft.gather(2, clean_pred[None, :, None].expand(logits.shape[0], -1, 1))[..., 0]
        self.preds[:, chunk.shift_index] = logits.argmax(dim=2).T
        self.change[:, chunk.shift_index] = (probs - clean_prob[None, :]).abs().T
        self.top1[:, chunk.shift_index] = soft.amax(dim=2).T
        if chunk.last:
            first = self.offset + chunk.start
            labels = None if self.labels is None else self.labels[first: first + chunk.n]
            preds, change, top1 = self.preds, self.change, self.top1
            if self.expand is not None:  # certified: each shift's columns are its residue's
                preds, change, top1 = preds[:, self.expand], change[:, self.expand], top1[:, self.expand]
            stats = invariance_update(preds, clean_pred, change, n_classes=clean.shape[1],
                                      flip_pairs=self.pairs, labels=labels, keep_predictions=self.keep,
                                      first_index=first, top1_prob=top1)
            self.total = stats if self.total is None else self.total + stats


def invariance(
    model: nn.Module,
    images: Tensor,
    labels: Tensor | None = None,
    *,
    shifts: ShiftSpec = 2,
    mode: str = "circular",
    batch_size: BatchSize = 256,
    crop_size: tuple[int, int] | None = None,
    device: str | torch.device | None = None,
    keep_predictions: bool = False,
    certify: bool | str = "auto",
    progress: ProgressFn | None = None,
) -> InvarianceResult:
    """Measure how a classifier's predictions change under shifts of its input.

    Args:
        model: classifier mapping ``[B, C, h, w]`` to logits ``[B, K]``. Measured in eval mode under
            ``torch.inference_mode``; its modes, hooks, parameters and device are restored afterwards.
        images: ``[N, C, H, W]`` floating point. Shifted on the model's device, chunk by chunk.
        labels: optional ``[N]`` class indices, for the accuracy fields.
        shifts: int ``m`` (every shift in ``[-m, m]^2``), a list of ``(dy, dx)`` or a ``ShiftSet``.
        mode: ``"circular"``, ``"zeros"``, ``"fourier"`` or ``"crop"`` (Zhang's protocol: the model
            sees ``crop_size`` windows of larger images, displaced by each shift from the centre).
        batch_size: images per forward pass (shifted copies included), or ``"auto"`` (the largest
            that fits a memory bound: :func:`shiftlab.measure.driver.auto_batch_size`; the result
            says which). Results do not depend on it.
        crop_size: ``(h, w)`` for ``mode="crop"``.
        device: where to run (``"cpu"``, ``"cuda"``, ``"auto"``: CUDA when available); default
            the model's own device. The model is moved there for the call and moved back.
        keep_predictions: keep the ``[N, |S|]`` table of top-1 classes in ``result.predictions``.
        certify: the polyphase certificate (:mod:`shiftlab.measure.certificate`): with ``"auto"``,
            circular integer shifts of a model whose premise holds on the data cost one pass per
            residue modulo its total stride (``result.method == "certified"``), else every shift
            runs (``"exact"``); ``True`` raises with the reason when the premise fails; ``False``
            never certifies. ``result.certificate`` says what was checked.
        progress: called as ``progress(done, total)`` after each forward pass (of this process).

    Returns:
        :class:`InvarianceResult`. When ``(0, 0)`` is in the shift set its forward pass is the
        unshifted one (no separate clean pass).

    Under an initialised ``torch.distributed`` process group (``docs/distributed.md``), every
    rank passes the same model, images and arguments (checked); each measures a contiguous
    shard of the images (:func:`shiftlab.measure.distributed.shard_bounds`), the statistics are
    added across ranks in rank order, and every rank returns the same result (``device`` is the
    rank's own). Rank 0 checks the certificate's premise for all, on the first images of the
    whole set; ``batch_size="auto"`` takes the smallest size any rank chose.

    Shape:
        - images: ``(N, C, H, W)``; labels: ``(N,)``
        - result.predictions: ``(N, |S|)``

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
        >>> invariance(net, torch.randn(8, 1, 6, 6), shifts=2).consistency
        1.0
    """
    with all_or_none():
        shift_set, in_hw, labels = _check(images, labels, shifts, mode, batch_size, crop_size, certify)
        runner = make_runner(local_module(model), device)
        cert = first_rank(lambda: _certificate(runner, images, shift_set, mode, certify))
        run_set, expand = _runs(cert, shift_set, certify)

        def measure(lo: int, hi: int, size: int | str) -> tuple[InvarianceStats, RunInfo]:
            return _run(runner, images[lo:hi], labels, lo, shift_set, run_set, expand, mode=mode, batch_size=size,
                        crop_size=crop_size, in_hw=in_hw, keep=keep_predictions, progress=progress)

        total, used_batch, used_device = measure_sharded(
            "invariance", runner, images, measure, batch_size=batch_size, mode=mode, crop_size=crop_size,
            labels=labels, shifts=shift_set.offsets, arguments=(mode, batch_size, crop_size, keep_predictions, certify))
    assert total is not None  # rank 0 always has images
    method = "certified" if expand is not None else "sampled" if shift_set.label.startswith("random") else "exact"
    result = invariance_compute(total, shift_set, mode=mode, method=method)
    result.batch_size, result.device, result.certificate = used_batch, used_device, cert
    return result


def invariance_stats(
    model: nn.Module,
    images: Tensor,
    labels: Tensor | None = None,
    *,
    shifts: ShiftSpec = 2,
    mode: str = "circular",
    batch_size: BatchSize = 256,
    crop_size: tuple[int, int] | None = None,
    device: str | torch.device | None = None,
    certify: bool | str = "auto",
) -> InvarianceStats:
    """The :class:`InvarianceStats` of ``images`` measured in this process alone: no sharding
    and no exchange even under a process group (the statistics of one rank's own batch, which
    ``shiftlab.metrics`` accumulates; add them with ``+`` and finish with
    :func:`invariance_compute`). Arguments as for :func:`invariance` (the predictions table is
    not kept); the model is left exactly as it was.

    Shape: images ``(N, C, H, W)``; labels ``(N,)``.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        >>> x = torch.randn(6, 1, 8, 8)
        >>> net = net.eval()
        >>> total = invariance_stats(net, x[:4], shifts=1) + invariance_stats(net, x[4:], shifts=1)
        >>> invariance_compute(total).consistency == invariance(net, x, shifts=1).consistency
        True
    """
    shift_set, in_hw, labels = _check(images, labels, shifts, mode, batch_size, crop_size, certify)
    runner = make_runner(model, device)
    cert = _certificate(runner, images, shift_set, mode, certify)
    run_set, expand = _runs(cert, shift_set, certify)
    stats, _ = _run(runner, images, labels, 0, shift_set, run_set, expand, mode=mode, batch_size=batch_size,
                    crop_size=crop_size, in_hw=in_hw, keep=False, progress=None)
    return stats


def _check(images: Tensor, labels: Tensor | None, shifts: ShiftSpec, mode: str, batch_size: BatchSize,
           crop_size: tuple[int, int] | None, certify: bool | str) -> tuple[ShiftSet, tuple[int, int], Tensor | None]:
    """Every check before a forward pass: ``(shift set, the model's input (h, w), labels as int64
    on the CPU, where the predictions are compared with them)``."""
    if certify not in (True, False, "auto"):
        raise ValueError(f"certify must be 'auto', True or False, got {certify!r}")
    shift_set = as_shift_set(shifts, images, mode)
    in_hw = check_inputs(images, shift_set, mode=mode, batch_size=batch_size, crop_size=crop_size)
    return shift_set, in_hw, None if labels is None else check_labels(labels, images.shape[0]).cpu()


def _run(runner: Runner, images: Tensor, labels: Tensor | None, offset: int, shift_set: ShiftSet,
         run_set: ShiftSet, expand: Tensor | None, *, mode: str, batch_size: BatchSize,
         crop_size: tuple[int, int] | None, in_hw: tuple[int, int], keep: bool,
         progress: ProgressFn | None) -> tuple[InvarianceStats, RunInfo]:
    """Run ``images`` (the measurement's images ``offset ..``; ``labels`` are all of them) at the
    shifts ``run_set`` and reduce them to statistics over ``shift_set`` (``expand``: each shift's
    residue, when certified)."""
    n_classes: list[int] = []

    def forward(out: object, batch: int) -> Tensor:
        logits = _check_logits(out, batch, n_classes[0] if n_classes else None)
        n_classes[:1] = [logits.shape[1]]
        return binary_logits(logits.detach().to("cpu", torch.float64))

    acc = _Accumulator(len(run_set), labels, keep, shift_set.unit_step_pairs(), expand, offset)
    run = run_chunks(runner, images, run_set, mode=mode, batch_size=batch_size, crop_size=crop_size, in_hw=in_hw,
                     forward=forward, on_chunk=acc, progress=progress)
    assert acc.total is not None
    return acc.total, run


def _certificate(runner: TorchRunner | OnnxRunner, images: Tensor, shift_set: ShiftSet, mode: str,
                 certify: bool | str) -> Certificate | None:
    """The polyphase certificate checked on the first :data:`CHECK_IMAGES` images, or None when
    it is not to be tried."""
    if certify is False or certify == "auto" and (mode != "circular" or not shift_set.is_integer):
        return None
    sample = images[:CHECK_IMAGES].to(device=runner.device, dtype=runner.dtype)  # all the premise check uses
    with runner.session(warn=False):
        return certify_premise(runner.model, sample, shift_set, mode=mode)


def _runs(cert: Certificate | None, shift_set: ShiftSet, certify: bool | str) -> tuple[ShiftSet, Tensor | None]:
    """``(shifts to run, residue index)``: the residues of ``shift_set`` when the certificate
    holds and saves passes (or ``certify=True``), else ``shift_set`` itself."""
    if cert is None or not cert.holds:
        if certify is True:
            assert cert is not None
            raise ValueError(f"certify=True, but the polyphase certificate does not hold: {cert.reason}")
        return shift_set, None
    residues, index = residue_plan(shift_set, cert.stride)
    if len(residues) == len(shift_set) and certify == "auto":
        return shift_set, None  # nothing to save
    return residues, index
