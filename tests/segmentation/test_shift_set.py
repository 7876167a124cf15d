"""The segmentation study's shifts and scenes (shiftlab.segmentation.shift_set, data.scenes margin):
kinds at matched distance, and no object leaves the canvas under a measured shift."""

from __future__ import annotations

import pytest
import torch

from shiftlab.data.scenes import load_scenes
from shiftlab.measure.shifts import shift
from shiftlab.segmentation.shift_set import SHIFT_KINDS, seg_shifts, shift_kind


def test_the_rings_are_at_the_same_distance_and_the_kinds_are_right():
    shifts = seg_shifts(8)
    assert shifts[0] == (0, 0) and len(set(shifts)) == len(shifts)
    kinds = {k: [d for d in shifts if shift_kind(d, 8) == k] for k in SHIFT_KINDS}
    assert len(kinds["aligned"]) == len(kinds["unaligned"]) == 8
    assert {max(abs(a), abs(b)) for a, b in kinds["aligned"] + kinds["unaligned"]} == {8}
    assert all(a % 8 == 0 and b % 8 == 0 for a, b in kinds["aligned"])
    assert not any(a % 8 == 0 and b % 8 == 0 for a, b in kinds["unaligned"])
    assert {max(abs(a), abs(b)) for a, b in kinds["near"]} == {1, 2, 4}
    with pytest.raises(ValueError, match="even"):
        seg_shifts(3)


@pytest.mark.parametrize("name", ["mnist-5k", "fashion-mnist"])
def test_objects_stay_whole_on_the_canvas_under_every_study_shift(name):
    scenes = load_scenes(name, "test", 60, canvas_size=64, margin=8)
    ink, labelled = scenes.images.sum(dim=(1, 2, 3)), (scenes.masks > 0).sum(dim=(1, 2))
    assert (scenes.boxes[..., :2][scenes.sources >= 0] >= 8).all()
    assert ((scenes.boxes[..., 0] + scenes.boxes[..., 2])[scenes.sources >= 0] <= 56).all()
    for dy, dx in seg_shifts(8):
        moved = shift(scenes.images, dy, dx, "zeros")
        moved_masks = shift(scenes.masks, dy, dx, "zeros")
        torch.testing.assert_close(moved.sum(dim=(1, 2, 3)), ink)  # no ink left the canvas
        assert torch.equal((moved_masks > 0).sum(dim=(1, 2)), labelled)


def test_margin_zero_draws_the_same_scenes_as_before_and_an_impossible_margin_is_refused():
    a = load_scenes("digits", "test", 5, canvas_size=24)
    b = load_scenes("digits", "test", 5, canvas_size=24, margin=0)
    assert torch.equal(a.images, b.images)
    with pytest.raises(ValueError, match="no room"):
        load_scenes("digits", "test", 5, canvas_size=24, margin=10)
