"""Segmentation scenes (shiftlab.data.scenes): each object pasted whole inside the canvas, apart from
the others, labelled at its ink; deterministic; test scenes from the test split; clear errors."""

from __future__ import annotations

import pytest
import torch

from shiftlab.data import ImageDataset, load
from shiftlab.data.scenes import INK_THRESHOLD, ink_box, load_scenes, make_scenes


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load("digits", split="train", limit=200)


@pytest.fixture(scope="module")
def scenes(digits):
    return make_scenes(digits, 40, canvas_size=32, objects=(2, 3), seed=3)


def test_each_object_is_pasted_whole_and_labelled_at_its_ink(digits, scenes):
    covered = torch.zeros_like(scenes.masks, dtype=torch.bool)
    for i in range(len(scenes)):
        for (top, left, h, w), source in zip(scenes.boxes[i].tolist(), scenes.sources[i].tolist(), strict=True):
            if source < 0:
                continue
            src_top, src_left, src_h, src_w = ink_box(digits.images[source])
            assert (h, w) == (src_h, src_w)
            crop = digits.images[source, :, src_top:src_top + h, src_left:src_left + w]
            assert torch.equal(scenes.images[i, :, top:top + h, left:left + w], crop)
            want = torch.where((crop > INK_THRESHOLD).any(0), int(digits.labels[source]) + 1, 0)
            assert torch.equal(scenes.masks[i, top:top + h, left:left + w], want)
            covered[i, top:top + h, left:left + w] = True
    assert not scenes.images.permute(1, 0, 2, 3)[:, ~covered].any()  # nothing outside the boxes
    assert not scenes.masks[~covered].any()
    assert scenes.images.sum() == pytest.approx(float(sum(digits.images[s].sum() for s in scenes.sources.flatten()
                                                          if s >= 0)), rel=1e-6)


def test_boxes_lie_inside_the_canvas_and_apart(scenes):
    for i in range(len(scenes)):
        boxes = [b for b in scenes.boxes[i].tolist() if b[0] >= 0]
        assert 2 <= len(boxes) <= 3
        for t, lf, h, w in boxes:
            assert t >= 0 and lf >= 0 and t + h <= 32 and lf + w <= 32
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                (t1, l1, h1, w1), (t2, l2, h2, w2) = boxes[a], boxes[b]
                assert t1 + h1 + 1 <= t2 or t2 + h2 + 1 <= t1 or l1 + w1 + 1 <= l2 or l2 + w2 + 1 <= l1


def test_classes_and_counts(digits, scenes):
    assert scenes.classes == ["background", *digits.classes]
    assert scenes.masks.dtype == torch.long and scenes.images.dtype == torch.float32
    assert set(scenes.masks.unique().tolist()) <= set(range(len(scenes.classes)))
    counts = (scenes.sources >= 0).sum(dim=1)
    assert set(counts.tolist()) == {2, 3}  # both counts drawn over 40 scenes


def test_the_same_seed_gives_the_same_scenes_and_another_seed_others(digits, scenes):
    again = make_scenes(digits, 40, canvas_size=32, objects=(2, 3), seed=3)
    assert torch.equal(again.images, scenes.images) and torch.equal(again.masks, scenes.masks)
    other = make_scenes(digits, 40, canvas_size=32, objects=(2, 3), seed=4)
    assert not torch.equal(other.images, scenes.images)


def test_test_scenes_are_made_from_the_test_split():
    test = load("digits", split="test")
    scenes = load_scenes("digits", "test", 5, canvas_size=24)
    assert scenes.name == "digits scenes (test)"
    for i, source in enumerate(scenes.sources[:, 0].tolist()):
        top, left, h, w = scenes.boxes[i, 0].tolist()
        src_top, src_left, _, _ = ink_box(test.images[source])
        assert torch.equal(scenes.images[i, :, top:top + h, left:left + w],
                           test.images[source, :, src_top:src_top + h, src_left:src_left + w])
    assert not torch.equal(load_scenes("digits", "train", 5, canvas_size=24).images, scenes.images)


def test_bad_arguments_get_clear_errors(digits):
    with pytest.raises(ValueError, match="n_scenes must be a positive int"):
        make_scenes(digits, 0)
    with pytest.raises(ValueError, match="1 <= fewest <= most"):
        make_scenes(digits, 1, objects=(3, 2))
    with pytest.raises(ValueError, match="smaller than the source images"):
        make_scenes(digits, 1, canvas_size=6)
    with pytest.raises(ValueError, match="could not place 3-3 objects 1 px apart on a 9x9 canvas"):
        make_scenes(digits, 1, canvas_size=9, objects=(3, 3))
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_scenes("digits", "all", 1)
    with pytest.raises(ValueError, match="no pixel > 0"):
        ink_box(torch.zeros(1, 4, 4))
