"""Tests of :mod:`shiftlab.measure.shiftsets`: how shift sets are built, validated and described."""

from __future__ import annotations

import itertools

import pytest
import torch

from shiftlab import ShiftSet, as_shift_set

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("m", [0, 1, 2, 3])
def test_grid_contains_every_shift_once_row_major(m):
    s = ShiftSet.grid(m)
    assert len(s) == (2 * m + 1) ** 2
    want = list(itertools.product(range(-m, m + 1), repeat=2))
    assert s.as_tuples() == want
    assert s.offsets.dtype == torch.float64 and s.offsets.shape == (len(want), 2)
    assert s.label == f"grid({m})"
    assert s.is_integer and s.max_abs == (float(m), float(m))


def test_grid_with_step_keeps_multiples_only():
    s = ShiftSet.grid(5, step=2)
    assert s.as_tuples() == list(itertools.product([-4, -2, 0, 2, 4], repeat=2))
    assert "step=2" in s.label


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_grid_rejects_bad_ranges(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        ShiftSet.grid(bad)
    with pytest.raises(ValueError, match="step must be >= 1"):
        ShiftSet.grid(2, step=0)


def test_random_integer_is_seeded_distinct_and_in_range():
    a = ShiftSet.random(20, 3, seed=7)
    b = ShiftSet.random(20, 3, seed=7)
    c = ShiftSet.random(20, 3, seed=8)
    assert torch.equal(a.offsets, b.offsets)
    assert not torch.equal(a.offsets, c.offsets)
    assert len(a) == 20 and len(set(a.as_tuples())) == 20
    assert a.is_integer and max(a.max_abs) <= 3
    assert "seed=7" in a.label and "integer" in a.label
    # all 49 shifts of [-3, 3]^2 can be drawn, not one more
    assert sorted(ShiftSet.random(49, 3, seed=1).as_tuples()) == sorted(ShiftSet.grid(3).as_tuples())
    with pytest.raises(ValueError, match=r"cannot draw 50 distinct integer shifts.*\(49 exist\)"):
        ShiftSet.random(50, 3)
    with pytest.raises(ValueError, match="n must be >= 1"):
        ShiftSet.random(0, 3)


def test_random_fractional_is_seeded_and_in_range():
    a = ShiftSet.random(64, 2.5, seed=0, fractional=True)
    assert torch.equal(a.offsets, ShiftSet.random(64, 2.5, seed=0, fractional=True).offsets)
    assert not torch.equal(a.offsets, ShiftSet.random(64, 2.5, seed=1, fractional=True).offsets)
    assert not a.is_integer
    assert float(a.offsets.abs().max()) <= 2.5
    assert len(set(a.as_tuples())) == 64
    assert all(isinstance(v, float) for pair in a.as_tuples() for v in pair)


def test_explicit_list_keeps_order_and_types():
    s = ShiftSet.from_list([(1, 0), (0, -2), (3, 3)])
    assert s.as_tuples() == [(1, 0), (0, -2), (3, 3)]
    assert all(isinstance(v, int) for pair in s.as_tuples() for v in pair)
    f = ShiftSet.from_list([(0.5, 0), (1, 1)])
    assert f.as_tuples() == [(0.5, 0.0), (1.0, 1.0)]
    assert s.index_of(0, -2) == 1 and s.index_of(9, 9) is None
    assert s.max_abs == (3.0, 3.0)


def test_duplicates_and_empty_sets_rejected_with_messages():
    with pytest.raises(ValueError, match="duplicate shifts"):
        ShiftSet.from_list([(1, 0), (0, 1), (1, 0)])
    with pytest.raises(ValueError, match="duplicate shifts"):
        as_shift_set([(0.5, 0.5), (0.5, 0.5)])
    with pytest.raises(ValueError, match="the shift set is empty"):
        as_shift_set([])
    with pytest.raises(ValueError, match="the shift set is empty"):
        ShiftSet(torch.zeros(0, 2))
    with pytest.raises(ValueError, match="finite"):
        ShiftSet.from_list([(float("inf"), 0)])
    with pytest.raises(ValueError, match=r"pair \(dy, dx\)"):
        ShiftSet.from_list([(1, 2, 3)])


def test_unit_step_pairs_on_a_grid():
    s = ShiftSet.grid(1)
    shifts = s.as_tuples()
    pairs = {(shifts[a], shifts[b]) for a, b in s.unit_step_pairs().tolist()}
    want = {
        ((dy, dx), (dy + ey, dx + ex))
        for dy, dx in shifts
        for ey, ex in ((1, 0), (0, 1))
        if (dy + ey, dx + ex) in shifts
    }
    assert pairs == want
    assert len(want) == 12  # 2 * 3 * 2 steps on a 3x3 grid
    assert s.unit_step_pairs().dtype == torch.long


def test_unit_step_pairs_of_sparse_and_fractional_sets():
    assert ShiftSet.grid(4, step=2).unit_step_pairs().shape == (0, 2)
    s = ShiftSet.from_list([(0.5, 0.5), (1.5, 0.5), (0.5, 1.5), (2, 2)])
    assert sorted(map(tuple, s.unit_step_pairs().tolist())) == [(0, 1), (0, 2)]


def test_check_fits_names_the_sizes():
    s = ShiftSet.grid(3)
    s.check_fits(4, 4, "circular")  # |d| = 3 < 4 fits
    with pytest.raises(ValueError, match=r"shift of \(3, 3\) px is too large for 3x8 images in 'zeros' mode"):
        s.check_fits(3, 8, "zeros")
    with pytest.raises(ValueError, match=r"\|dx\| < 2"):
        ShiftSet.from_list([(0, 2)]).check_fits(10, 2, "circular")


def test_as_shift_set_types():
    g = as_shift_set(2)
    assert isinstance(g, ShiftSet) and len(g) == 25 and g.label == "grid(2)"
    explicit = ShiftSet.from_list([(1, 1)])
    assert as_shift_set(explicit) is explicit
    lst = as_shift_set([(1, 0), (0, 1)])
    assert lst.as_tuples() == [(1, 0), (0, 1)] and lst.label == "list"
    t = as_shift_set(torch.tensor([[1, 2], [3, 4]]))
    assert t.offsets.dtype == torch.float64 and t.as_tuples() == [(1, 2), (3, 4)]
    with pytest.raises(TypeError, match="not a bool"):
        as_shift_set(True)
    with pytest.raises(TypeError, match="got str"):
        as_shift_set("2")
    with pytest.raises(TypeError, match="got float"):
        as_shift_set(2.0)
    with pytest.raises(ValueError, match="non-negative"):
        as_shift_set(-1)


def test_a_huge_shift_range_is_refused_at_once():
    import time

    import shiftlab as sl
    from shiftlab.measure.shiftsets import MAX_SHIFTS

    start = time.perf_counter()
    for spec in (20000, 3000):
        with pytest.raises(ValueError, match=f"shifts={spec} .* shifts per image, more than the 4,000,000"):
            ShiftSet.grid(spec)
        with pytest.raises(ValueError, match="too large for 8x8 images"):  # with images: their size first
            sl.invariance(torch.nn.Flatten(), torch.zeros(1, 1, 8, 8), shifts=spec)
    with pytest.raises(ValueError, match="full circular profile of 3000x3000"):
        ShiftSet.full(3000, 3000)
    with pytest.raises(ValueError, match="more than the"):
        ShiftSet.random(MAX_SHIFTS + 1, 5000)
    assert time.perf_counter() - start < 1.0  # nothing was built
    assert len(ShiftSet.grid(40)) == 81**2  # ordinary ranges are untouched
