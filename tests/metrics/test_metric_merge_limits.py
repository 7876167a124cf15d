"""Merging metric states that do not add up, and a class count no model has (issue 21, case 16):
``merge_state`` of a circular and a zero-fill metric gave a silent mixed number, other shift sets
or class counts a raw size-mismatch ``RuntimeError``; ``ShiftConsistency(10**9)`` tried an 8 GB
allocation. Each is now a ``ValueError`` naming the difference, before anything is added."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shiftlab.metrics import ShiftConsistency

pytest.importorskip("torchmetrics")


def _measured(metric):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3)).eval()
    metric.update(model, torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1)))
    return metric


@pytest.mark.parametrize(("other", "why"), [
    (lambda: ShiftConsistency(3, shifts=1, mode="zeros"), r"mode 'circular' here, 'zeros' in the other"),
    (lambda: ShiftConsistency(3, shifts=2), r"9 shifts here, 25 in the other"),
    (lambda: ShiftConsistency(4, shifts=1), r"3 classes here, 4 in the other"),
])
def test_merging_metrics_that_do_not_add_up_is_refused_naming_the_difference(other, why):
    mine = _measured(ShiftConsistency(3, shifts=1))
    before = mine.compute()
    theirs = other()
    with pytest.raises(ValueError, match=r"cannot merge the state of another ShiftConsistency: " + why):
        mine.merge_state(theirs)
    if "mode" not in why:  # its states as a dict (a dict carries no mode): the sizes are checked
        with pytest.raises(ValueError, match=r"cannot merge the state of another ShiftConsistency: its state"):
            mine.merge_state({k: getattr(theirs, k) for k in theirs._defaults})
    assert torch.equal(mine.compute(), before)  # nothing was added
    same = _measured(ShiftConsistency(3, shifts=1))
    mine.merge_state(same)
    assert mine.compute() == before  # the same consistency, twice the images


def test_a_class_count_no_model_has_is_refused_before_allocating():
    with pytest.raises(ValueError, match=r"num_classes must be an int >= 1 and at most 100,000"):
        ShiftConsistency(10**9)


def test_layer_equivariance_metrics_of_other_modes_or_shifts_do_not_merge():
    from shiftlab.metrics import LayerEquivarianceError

    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), nn.MaxPool2d(2)).eval()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    mine = LayerEquivarianceError(model, x, shifts=1)
    mine.update(model, x)
    for other, why in ((LayerEquivarianceError(model, x, shifts=1, mode="zeros"), "mode 'circular' here, 'zeros'"),
                       (LayerEquivarianceError(model, x, shifts=2), "9 shifts here, 25 in the other")):
        with pytest.raises(ValueError, match=r"cannot merge the state of another LayerEquivarianceError: " + why):
            mine.merge_state(other)
