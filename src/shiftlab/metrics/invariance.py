"""torchmetrics metrics of a classifier's shift invariance (``docs/metrics.md``; the definitions
are in ``docs/definitions.md``, "Invariance metrics").

Every metric here holds the same states, the fields of
:class:`~shiftlab.measure.invariance.InvarianceStats` as tensors (``[]``, ``[|S|]`` or ``[K]``,
int64 counts and float64 sums, all reduced by sum), and differs only in what ``compute()``
returns from :func:`~shiftlab.measure.invariance.invariance_compute`. Metrics built with the same
arguments therefore share one set of forward passes in a ``torchmetrics.MetricCollection``
(compute groups). The states, ``update`` and ``merge_state`` live in one private base,
``_InvarianceStates``; each public class adds its own ``compute()``, the whole result
(:class:`ShiftInvariance`) or one field of it as a tensor (the others), so no class changes the
return type of another's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from shiftlab.measure.driver import BatchSize
from shiftlab.measure.invariance import (
    InvarianceResult,
    InvarianceStats,
    invariance_compute,
    invariance_stats,
)
from shiftlab.measure.shiftsets import ShiftSpec, as_shift_set

from ._kwargs import MetricKwargs
from ._merge import check_same_arguments, check_same_shifts, check_state_shapes, refusal

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AccuracyByShift", "CleanConsistency", "FlipRate", "ShiftConsistency", "ShiftInvariance", "WorstCaseAccuracy"]

#: The most classes a metric holds counts for (``[K]`` states; as the data readers' ``MAX_CLASSES``).
MAX_CLASSES = 100_000
#: The states, by the fields of InvarianceStats they hold: integer counts ``[]``, counts per
#: shift ``[|S|]``, counts per class ``[K]`` and float64 sums ``[]``.
_COUNTS = ("n_images", "consistency_sum", "consistency_sq_sum", "flips", "flip_pairs", "clean_correct", "all_correct",
           "top1_prob_count")
_PER_SHIFT = ("clean_agree", "correct")
_PER_CLASS = ("class_counts", "label_counts")
_FLOAT_SUMS = ("prob_change_sum", "top1_prob_sum")
#: Held only when labels are given.
_LABELLED = ("clean_correct", "all_correct", "correct", "label_counts")


class _InvarianceStates(Metric):
    """The states, arguments, ``update`` and ``merge_state`` of every invariance metric; the
    public classes below add ``compute()`` (arguments: as for :class:`ShiftInvariance`)."""

    is_differentiable = False
    full_state_update = False
    #: Whether ``update`` must be given labels (the accuracy metrics).
    needs_labels = False
    #: Whether the shift set must hold unit steps, refused at construction otherwise (the flip rate).
    needs_unit_steps = False
    # States read by name here (``add_state`` registers them all; declared for type checkers).
    n_images: Tensor
    n_labelled: Tensor

    def __init__(self, num_classes: int, shifts: ShiftSpec = 2, *, mode: str = "circular",
                 crop_size: tuple[int, int] | None = None, batch_size: BatchSize = 256,
                 certify: bool | str = "auto", **kwargs: Unpack[MetricKwargs]) -> None:
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= MAX_CLASSES:
            raise ValueError(f"num_classes must be an int >= 1 and at most {MAX_CLASSES:,} (the number of classes the "
                             f"model outputs; its states hold a count per class), got {num_classes!r}")
        self.num_classes = num_classes
        self.shift_set = as_shift_set(shifts, None, mode)
        if self.needs_unit_steps and self.shift_set.unit_step_pairs().numel() == 0:
            raise ValueError(f"{type(self).__name__} needs neighbouring shifts (unit steps (1, 0) or (0, 1) inside the "
                             f"set); {self.shift_set.label!r} has none: use e.g. shifts=1")
        self.mode, self.crop_size, self.batch_size, self.certify = mode, crop_size, batch_size, certify
        shapes = {**dict.fromkeys(_COUNTS + ("n_labelled",), ()), **dict.fromkeys(_PER_SHIFT, (len(self.shift_set),)),
                  **dict.fromkeys(_PER_CLASS, (num_classes,))}
        for name, shape in shapes.items():
            self.add_state(name, torch.zeros(shape, dtype=torch.long), dist_reduce_fx="sum")
        for name in _FLOAT_SUMS:
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def merge_state(self, incoming_state: dict[str, Any] | Metric) -> None:
        """Add another metric's states (or a dict of them) to this one's; a ``ValueError`` naming
        the difference, before anything is added, when they do not add up: another mode, crop,
        shift set or class count (issue 21, case 16)."""
        if isinstance(incoming_state, _InvarianceStates):
            check_same_arguments(self, (("mode", self.mode, incoming_state.mode),
                                        ("crop_size", self.crop_size, incoming_state.crop_size)))
            check_same_shifts(self, self.shift_set, incoming_state.shift_set)
            if self.num_classes != incoming_state.num_classes:
                raise ValueError(f"{refusal(self)}{self.num_classes} classes here, {incoming_state.num_classes} in the "
                                 "other")
        elif isinstance(incoming_state, dict):
            check_state_shapes(self, incoming_state, "other shift sets or class counts")
        super().merge_state(incoming_state)

    def update(self, model: nn.Module, images: Tensor, labels: Tensor | None = None) -> None:
        """Measure ``model`` on the batch ``images [B, C, H, W]`` (with ``labels [B]``) at every
        shift and add its statistics. Raises ``ValueError`` (and adds nothing) for bad input, a
        model with another number of classes, or labels given for some updates and not others."""
        if labels is None and self.needs_labels:
            raise ValueError(f"{type(self).__name__} needs labels: update(model, images, labels)")
        if int(self.n_images) > 0 and (int(self.n_labelled) > 0) != (labels is not None):
            raise ValueError("give labels with every update or with none (this metric has seen "
                             f"{'labelled' if int(self.n_labelled) else 'unlabelled'} images)")
        stats = invariance_stats(model, images, labels, shifts=self.shift_set, mode=self.mode,
                                 batch_size=self.batch_size, crop_size=self.crop_size, certify=self.certify)
        if stats.n_classes != self.num_classes:
            raise ValueError(f"the model outputs {stats.n_classes} classes but the metric was built with "
                             f"num_classes={self.num_classes}")
        for name in _COUNTS + _FLOAT_SUMS + _PER_SHIFT + _PER_CLASS:
            value = getattr(stats, name)
            if value is not None:
                setattr(self, name, getattr(self, name) + (value.to(self.device) if isinstance(value, Tensor) else value))
        if stats.labelled:
            self.n_labelled = self.n_labelled + stats.n_images

    def statistics(self) -> InvarianceStats:
        """The states as :class:`~shiftlab.measure.invariance.InvarianceStats` (this process's,
        or every process's inside ``compute`` and ``sync_context``)."""
        n, labelled = int(self.n_images), int(self.n_labelled)
        if 0 < labelled < n:
            raise ValueError(f"labels were given for {labelled} of the {n} images (some updates or some processes "
                             "only); give labels with every update or with none")
        values = {name: getattr(self, name).detach().cpu() for name in _PER_SHIFT + _PER_CLASS}
        values.update({name: int(getattr(self, name)) for name in _COUNTS})
        values.update({name: float(getattr(self, name)) for name in _FLOAT_SUMS})
        if not labelled:
            values.update({name: None if name in _PER_SHIFT + _PER_CLASS else 0 for name in _LABELLED})
        return InvarianceStats(len(self.shift_set), self.num_classes, labelled=labelled > 0, **values)

    def _result(self) -> InvarianceResult:
        """The :class:`~shiftlab.InvarianceResult` of the states; ``ValueError`` before any image."""
        method = "sampled" if self.shift_set.label.startswith("random") else "exact"
        return invariance_compute(self.statistics(), self.shift_set, mode=self.mode, method=method)

    def _value(self, field: str) -> Tensor:
        """One field of the result as a float64 tensor on the metric's device; NaN (shaped like
        the field) before any image, as torchmetrics metrics do."""
        if int(self.n_images) == 0:
            shape = (len(self.shift_set),) if field.endswith("_by_shift") else ()
            return torch.full(shape, math.nan, dtype=torch.float64, device=self.device)
        return torch.tensor(getattr(self._result(), field), dtype=torch.float64, device=self.device)


class ShiftInvariance(_InvarianceStates):
    """Every invariance metric of a classifier, accumulated over batches: ``compute()`` returns
    the :class:`~shiftlab.InvarianceResult` that :func:`shiftlab.invariance` gives for all the
    images seen (since the last ``reset``, on every process).

    Args:
        num_classes: ``K``, the number of classes the model outputs (the states are sized by it
            before any update, so that they reduce across processes; a model with another
            number of outputs is refused at ``update``).
        shifts: the shift set: int ``m`` (every shift in ``[-m, m]^2``), a list of ``(dy, dx)``
            or a :class:`~shiftlab.ShiftSet`.
        mode, crop_size, batch_size, certify: as for :func:`shiftlab.invariance`, used at every
            update (``batch_size``: images per forward pass, shifted copies included).
        kwargs: torchmetrics' own (``dist_sync_on_step``, ``process_group``, ``sync_on_compute``, ...;
            typed, so a type checker refuses a misspelt or mistyped one).

    ``update(model, images, labels=None)`` runs ``model`` on the batch at every shift (in eval
    mode under ``torch.inference_mode``, on the model's own device, left exactly as it was) and
    adds the statistics. The model is an argument of each update, never an attribute: the
    metric's ``state_dict`` and ``.to(device)`` hold only its statistics. Give labels with every
    update or with none. A metric's result does not record how the passes ran (batch size,
    device, certificate): the numbers do not depend on it.

    Every metric of :mod:`shiftlab.metrics.invariance` takes these arguments and shares this
    ``update``, ``merge_state(other)`` (another such metric's states or a dict of them; a
    ``ValueError`` naming the difference, before anything is added, when they do not add up)
    and ``statistics()`` (the states as :class:`~shiftlab.measure.invariance.InvarianceStats`).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        >>> net = net.eval()
        >>> metric = ShiftInvariance(num_classes=3, shifts=1)
        >>> x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
        >>> metric.update(net, x[:4], y[:4]); metric.update(net, x[4:], y[4:])
        >>> from shiftlab import invariance
        >>> metric.compute().consistency == invariance(net, x, y, shifts=1).consistency
        True
    """

    higher_is_better: bool | None = None

    def compute(self) -> InvarianceResult:
        """The :class:`~shiftlab.InvarianceResult` of every image seen; ``ValueError`` before any."""
        return self._result()


class ShiftConsistency(_InvarianceStates):
    """Consistency (Zhang 2019): the probability that two shifts drawn from the set give the same
    class, ``mean_i sum_k (n_ik / |S|)^2`` (``docs/definitions.md``, "Consistency"). ``compute()``:
    a float64 scalar. Arguments as for :class:`ShiftInvariance`."""

    higher_is_better = True
    plot_lower_bound, plot_upper_bound = 0.0, 1.0

    def compute(self) -> Tensor:
        return self._value("consistency")


class CleanConsistency(_InvarianceStates):
    """Agreement with the unshifted prediction, over images and shifts (``docs/definitions.md``,
    "Clean consistency"). ``compute()``: a float64 scalar."""

    higher_is_better = True
    plot_lower_bound, plot_upper_bound = 0.0, 1.0

    def compute(self) -> Tensor:
        return self._value("clean_consistency")


class FlipRate(_InvarianceStates):
    """How often a one-pixel move changes the prediction (Azulay & Weiss 2019;
    ``docs/definitions.md``, "Flip rate"). The shift set must have unit steps (refused at
    construction otherwise). ``compute()``: a float64 scalar."""

    higher_is_better = False
    needs_unit_steps = True
    plot_lower_bound, plot_upper_bound = 0.0, 1.0

    def compute(self) -> Tensor:
        return self._value("flip_rate")


class AccuracyByShift(_InvarianceStates):
    """Accuracy at each shift of the set, ``acc(d)`` (``docs/definitions.md``, "Accuracy by shift
    and worst-case accuracy"), in the order of ``metric.shift_set``. Needs labels.
    ``compute()``: float64 ``[|S|]``."""

    higher_is_better = True
    needs_labels = True
    plot_lower_bound, plot_upper_bound = 0.0, 1.0

    def compute(self) -> Tensor:
        return self._value("accuracy_by_shift")


class WorstCaseAccuracy(_InvarianceStates):
    """The fraction of images classified correctly at every shift of the set
    (``docs/definitions.md``, "Accuracy by shift and worst-case accuracy"). Needs labels.
    ``compute()``: a float64 scalar."""

    higher_is_better = True
    needs_labels = True
    plot_lower_bound, plot_upper_bound = 0.0, 1.0

    def compute(self) -> Tensor:
        return self._value("worst_case_accuracy")
