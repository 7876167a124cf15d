"""The study's conditions: class split, class selection, position-probe placements."""

from __future__ import annotations

import pytest
import torch

from shiftlab.study.conditions import CONDITIONS, condition, probe_eval_set, probe_train_set, select_classes, split_classes


def test_every_condition_is_described_and_unknown_ones_are_refused():
    assert CONDITIONS[:2] == ("centred", "augmented")
    assert all(condition(name).description for name in CONDITIONS)
    assert condition("transfer").augment == "canvas" and condition("transfer_control").augment == "none"
    assert condition("probe_circular").circular_padding and condition("probe_circular").probe
    with pytest.raises(ValueError, match="unknown condition"):
        condition("rotated")


def test_split_and_select_renumber_the_second_half():
    first, second = split_classes(10)
    assert first == [0, 1, 2, 3, 4] and second == [5, 6, 7, 8, 9]
    labels = torch.tensor([0, 5, 9, 3, 7])
    images = torch.arange(5.0).reshape(5, 1, 1, 1)
    x, y = select_classes(images, labels, second)
    assert x.flatten().tolist() == [1.0, 2.0, 4.0] and y.tolist() == [0, 4, 2]
    few = select_classes(images[:2], labels[:2], second)  # classes absent from a small set are fine
    assert few[1].tolist() == [0]
    with pytest.raises(ValueError, match="at least 2 classes"):
        split_classes(1)


def test_probe_places_each_object_left_or_right_by_the_offset():
    canvases = torch.zeros(4, 1, 16, 32)
    canvases[:, :, 6:10, 14:18] = 1.0  # centred object
    x, y = probe_eval_set(canvases, 8)
    assert y.tolist() == [0] * 4 + [1] * 4
    cols = x[:, 0].sum(dim=1).nonzero()[:, 1].reshape(8, 4)
    assert cols[:4].tolist() == [[6, 7, 8, 9]] * 4 and cols[4:].tolist() == [[22, 23, 24, 25]] * 4
    tx, ty = probe_train_set(canvases, 8, seed=3)
    again = probe_train_set(canvases, 8, seed=3)
    assert torch.equal(tx, again[0]) and torch.equal(ty, again[1])
    left = tx[ty == 0, 0].sum(dim=1).nonzero()[:, 1]
    assert set(left.tolist()) <= {6, 7, 8, 9}
