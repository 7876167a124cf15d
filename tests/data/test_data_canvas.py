import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shiftlab.data.canvas import (
    Canvas,
    canvas_size_for,
    grid_offsets,
    iter_grid,
    max_shift,
    place_grid,
    place_on_canvas,
    random_offsets,
    random_translate,
    translate,
)


def slow_place(images, canvas_size, offsets):
    """Reference: one image at a time, plain slicing."""
    n, c, h, w = images.shape
    H, W = canvas_size
    out = torch.zeros(n, c, H, W)
    for k in range(n):
        top = (H - h) // 2 + int(offsets[k][0])
        left = (W - w) // 2 + int(offsets[k][1])
        out[k, :, top : top + h, left : left + w] = images[k]
    return out


def slow_translate(images, offsets):
    n, c, h, w = images.shape
    out = torch.zeros_like(images)
    for k in range(n):
        dy, dx = (int(v) for v in offsets[k])
        for i in range(h):
            for j in range(w):
                if 0 <= i - dy < h and 0 <= j - dx < w:
                    out[k, :, i, j] = images[k, :, i - dy, j - dx]
    return out


def objects(n=4, c=2, h=5, w=3, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) + 0.1


def test_canvas_size_for():
    assert canvas_size_for(28) == 42  # 7 px each way
    assert canvas_size_for(28, 0.25, multiple_of=8) == 48
    assert canvas_size_for((8, 6), 0.5) == (16, 12)
    assert canvas_size_for(10, 0.0) == 10
    for size, fraction, multiple in [(28, 0.25, 8), (7, 0.3, 4), (9, 0.5, 1), (32, 0.1, 16)]:
        canvas = canvas_size_for(size, fraction, multiple)
        assert canvas % multiple == 0
        assert max_shift(size, canvas)[0] >= fraction * size
        smaller = canvas - multiple
        assert smaller < size or max_shift(size, smaller)[0] < fraction * size  # the smallest such canvas


def test_centred_placement_is_in_the_middle():
    images = objects(h=4, w=2)
    placed = place_on_canvas(images, (10, 8))
    assert placed.shape == (4, 2, 10, 8)
    assert torch.equal(placed[:, :, 3:7, 3:5], images)
    assert placed.sum() == pytest.approx(images.sum().item(), rel=1e-6)
    assert torch.equal(Canvas((4, 2), (10, 8)).centred(images), placed)


def test_offsets_move_exactly_like_the_reference():
    images = objects()
    canvas = (11, 9)
    offsets = torch.tensor([[0, 0], [-3, 3], [3, -3], [2, 1]])
    assert torch.equal(place_on_canvas(images, canvas, offsets), slow_place(images, canvas, offsets))
    # odd margins (10 - 5 = 8 - 3 = 5): centred at (2, 2), and the + side has one extra shift, to 3
    assert torch.equal(place_on_canvas(images, (10, 8), [[3, 3]] * 4)[:, :, 2 + 3 :, 2 + 3 :], images)
    with pytest.raises(ValueError, match="outside"):
        place_on_canvas(images, (10, 8), [[-3, 0]] * 4)


def test_out_of_canvas_offsets_raise():
    images = objects()
    with pytest.raises(ValueError, match=r"image 2 .*outside.*dy in \[-3, 3\]"):
        place_on_canvas(images, (11, 9), torch.tensor([[0, 0], [0, 0], [4, 0], [0, 0]]))
    with pytest.raises(ValueError, match="outside"):
        place_on_canvas(images, (11, 9), torch.tensor([[0, 0], [0, 0], [0, -4], [0, 0]]))
    with pytest.raises(ValueError, match="does not fit"):
        place_on_canvas(images, 4)
    with pytest.raises(TypeError, match="integers"):
        place_on_canvas(images, 11, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        place_on_canvas(images, 11, torch.zeros(3, 2, dtype=torch.int64))


def test_grid_covers_every_position_once():
    canvas = Canvas((5, 3), (11, 8))
    assert canvas.max_shift == (3, 2)
    offsets = canvas.grid_offsets()
    assert len(offsets) == 7 * 5
    assert {tuple(o) for o in offsets.tolist()} == {(dy, dx) for dy in range(-3, 4) for dx in range(-2, 3)}
    images = objects(n=3, c=1)
    placed, same = canvas.grid(images)
    assert torch.equal(same, offsets) and placed.shape == (3, 35, 1, 11, 8)
    for p, offset in enumerate(offsets.tolist()):
        assert torch.equal(placed[:, p], slow_place(images, (11, 8), [offset] * 3))
    stepped = grid_offsets((3, 2), step=2).tolist()
    assert stepped == [[-2, -2], [-2, 0], [-2, 2], [0, -2], [0, 0], [0, 2], [2, -2], [2, 0], [2, 2]]


def test_iter_grid_matches_place_grid_in_bounded_batches():
    canvas = Canvas((5, 3), (9, 7))
    images = objects(n=3)
    placed, offsets = canvas.grid(images)
    seen = torch.zeros(3, len(offsets), dtype=torch.int64)
    for batch in canvas.iter_grid(images, batch_size=7):
        assert len(batch.images) <= 7
        assert torch.equal(batch.images, placed[batch.image_index, batch.offset_index])
        seen[batch.image_index, batch.offset_index] += 1
    assert torch.equal(seen, torch.ones_like(seen))
    with pytest.raises(ValueError, match="outside"):  # checked before the first batch
        iter_grid(images, (9, 7), torch.tensor([[5, 0]]))
    with pytest.raises(ValueError, match=r"expected objects \[N, C, 5, 3\]"):
        canvas.grid(objects(h=4))


def test_place_grid_is_image_major():
    images = objects(n=2, c=1)
    offsets = torch.tensor([[0, 0], [1, -1]])
    placed = place_grid(images, 9, offsets)
    assert torch.equal(placed[1, 1], slow_place(images[1:], (9, 9), [[1, -1]])[0])


def test_random_placement_is_seeded():
    canvas = Canvas.for_object((5, 3), fraction=0.5, multiple_of=2)
    images = objects(n=50, c=1)
    first, offsets = canvas.random(images, seed=3)
    again, offsets_again = canvas.random(images, seed=3)
    other, offsets_other = canvas.random(images, seed=4)
    assert torch.equal(first, again) and torch.equal(offsets, offsets_again)
    assert not torch.equal(offsets, offsets_other)
    assert torch.equal(first, slow_place(images, canvas.canvas_size, offsets))
    my, mx = canvas.max_shift
    assert offsets[:, 0].abs().max() <= my and offsets[:, 1].abs().max() <= mx
    assert len(set(map(tuple, offsets.tolist()))) > 10  # actually spread out
    small = canvas.random(images, seed=3, max_shift=1)[1]
    assert small.abs().max() <= 1


def test_translate_matches_reference_including_clipping():
    images = objects(n=5, h=4, w=6)
    offsets = torch.tensor([[0, 0], [1, -2], [-3, 5], [4, 0], [-1, -7]])
    assert torch.equal(translate(images, offsets), slow_translate(images, offsets))


def test_random_translate_keeps_mass_and_is_deterministic():
    images = place_on_canvas(objects(n=20, c=1), (13, 11))  # margins 4 in both directions
    out = random_translate(images, 4, torch.Generator().manual_seed(0))
    assert torch.allclose(out.sum(dim=(1, 2, 3)), images.sum(dim=(1, 2, 3)))
    assert not torch.equal(out, images)
    assert torch.equal(out, random_translate(images, 4, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, random_translate(images, 4, torch.Generator().manual_seed(1)))
    expected = translate(images, random_offsets(20, 4, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(out, expected)


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    margin_y=st.integers(0, 5),
    margin_x=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_random_placement_property(h, w, margin_y, margin_x, seed):
    images = objects(n=3, c=1, h=h, w=w, seed=seed)
    canvas = Canvas((h, w), (h + margin_y, w + margin_x))
    placed, offsets = canvas.random(images, seed=seed)
    assert torch.equal(placed, slow_place(images, canvas.canvas_size, offsets))
    assert torch.allclose(placed.sum(dim=(1, 2, 3)), images.sum(dim=(1, 2, 3)))


def test_canvas_for_content_uses_the_content_extent_and_a_minimum_margin():
    from shiftlab.data.canvas import Canvas, content_extent

    images = torch.zeros(3, 1, 28, 28)
    images[0, 0, 4:24, 6:20] = 1.0  # a 20 x 14 object in a 28 x 28 frame
    assert content_extent(images) == (20, 14)
    assert Canvas.for_content(images, 0.25).canvas_size == (28 + 2 * 5, 28 + 2 * 4)
    assert Canvas.for_content(images, 0.25, multiple_of=8).canvas_size == (40, 40)
    assert Canvas.for_content(images, 0.25, multiple_of=8, min_margin=8).canvas_size == (48, 48)
