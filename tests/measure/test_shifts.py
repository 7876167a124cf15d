"""Property tests of the translation operators in :mod:`shiftlab.measure.shifts` (DESIGN section 2).

Exact identities are checked bitwise (index shifts) or to ~1e-12 in float64 (Fourier shifts).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shiftlab import crop, crop_many, shift, shift_many

pytestmark = pytest.mark.usefixtures("one_thread")


SETTINGS = settings(max_examples=60, deadline=None)
TOL = 1e-12

sizes = st.integers(min_value=2, max_value=12)
odd_sizes = st.integers(min_value=1, max_value=6).map(lambda k: 2 * k + 1)  # 3..13
seeds = st.integers(min_value=0, max_value=2**31 - 1)
int_shift = st.integers(min_value=-15, max_value=15)
frac_shift = st.floats(min_value=-6.0, max_value=6.0, allow_nan=False, allow_infinity=False)


def rand(seed: int, *shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)


def zeros_reference(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Slow per-pixel definition of the zero-filled shift: out[i, j] = x[i - dy, j - dx] or 0."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    for i in range(h):
        for j in range(w):
            si, sj = i - dy, j - dx
            if 0 <= si < h and 0 <= sj < w:
                out[..., i, j] = x[..., si, sj]
    return out


# --- circular (integer) ---------------------------------------------------------------------


@SETTINGS
@given(seeds, sizes, sizes, int_shift, int_shift, int_shift, int_shift)
def test_circular_composition_is_addition(seed, h, w, ay, ax, by, bx):
    x = rand(seed, 2, h, w)
    assert torch.equal(shift(shift(x, by, bx), ay, ax), shift(x, ay + by, ax + bx))


@SETTINGS
@given(seeds, sizes, sizes, int_shift, int_shift)
def test_circular_inverse_and_roll(seed, h, w, dy, dx):
    x = rand(seed, 3, h, w)
    assert torch.equal(shift(shift(x, dy, dx), -dy, -dx), x)
    assert torch.equal(shift(x, dy, dx), torch.roll(x, (dy, dx), dims=(-2, -1)))


@SETTINGS
@given(seeds, sizes, sizes, int_shift, int_shift)
def test_circular_integer_shift_preserves_energy_exactly(seed, h, w, dy, dx):
    x = rand(seed, 2, h, w)
    y = shift(x, dy, dx)
    # a permutation of the pixels: the multiset of values, hence the energy, is unchanged
    assert torch.equal(torch.sort(y.flatten()).values, torch.sort(x.flatten()).values)
    assert abs(float(y.square().sum() - x.square().sum())) <= TOL * float(x.square().sum())


def test_shift_sign_convention_moves_content_down_and_right():
    x = torch.zeros(5, 6, dtype=torch.float64)
    x[1, 2] = 1.0
    for mode in ("circular", "zeros", "fourier"):
        y = shift(x, 2, 3, mode=mode)
        assert abs(float(y[3, 5]) - 1.0) < TOL, mode
        assert float(y.abs().sum()) == pytest.approx(1.0, abs=1e-9), mode


# --- fractional (Fourier) ---------------------------------------------------------------------


@SETTINGS
@given(seeds, sizes, sizes, int_shift, int_shift)
def test_fourier_equals_roll_at_integer_shifts(seed, h, w, dy, dx):
    x = rand(seed, 2, h, w)
    got = shift(x, dy, dx, mode="fourier")
    assert got.dtype == torch.float64
    assert float((got - torch.roll(x, (dy, dx), dims=(-2, -1))).abs().max()) < TOL


@SETTINGS
@given(seeds, odd_sizes, odd_sizes, frac_shift, frac_shift, st.sampled_from(["fourier", "circular"]))
def test_fractional_inverse_is_identity_on_odd_sizes(seed, h, w, dy, dx, mode):
    x = rand(seed, 2, h, w)
    back = shift(shift(x, dy, dx, mode=mode), -dy, -dx, mode=mode)
    assert float((back - x).abs().max()) < 1e-11


@SETTINGS
@given(seeds, odd_sizes, odd_sizes, frac_shift, frac_shift, frac_shift, frac_shift)
def test_fractional_composition_is_addition_on_odd_sizes(seed, h, w, ay, ax, by, bx):
    x = rand(seed, h, w)
    got = shift(shift(x, by, bx, mode="fourier"), ay, ax, mode="fourier")
    assert float((got - shift(x, ay + by, ax + bx, mode="fourier")).abs().max()) < 1e-11


@SETTINGS
@given(seeds, odd_sizes, odd_sizes, frac_shift, frac_shift)
def test_fractional_shift_preserves_energy_on_odd_sizes(seed, h, w, dy, dx):
    # Odd sizes only: for even sizes the Nyquist component of a real image cannot be shifted by a
    # fraction of a pixel and stay real; the module keeps the real part, scaling it by cos(pi d)
    # (see the module docstring and the test below), so energy is not preserved there.
    x = rand(seed, 2, h, w)
    y = shift(x, dy, dx, mode="fourier")
    e0, e1 = float(x.square().sum()), float(y.square().sum())
    assert abs(e1 - e0) <= 1e-12 * e0


def test_even_size_nyquist_is_scaled_by_cos_pi_d_as_documented():
    h = 8
    nyq = ((-1.0) ** torch.arange(h, dtype=torch.float64))[:, None].expand(h, 5).contiguous()
    for d in (0.5, 0.25, 1.0, 1.5):
        got = shift(nyq, d, 0, mode="fourier")
        want = torch.cos(torch.tensor(torch.pi * d, dtype=torch.float64)) * nyq
        assert float((got - want).abs().max()) < TOL, d


# --- zeros --------------------------------------------------------------------------------------


@SETTINGS
@given(seeds, sizes, sizes, int_shift, int_shift)
def test_zeros_integer_equals_per_pixel_reference(seed, h, w, dy, dx):
    x = rand(seed, 2, h, w)
    assert torch.equal(shift(x, dy, dx, mode="zeros"), zeros_reference(x, dy, dx))


def test_zeros_fill_is_zero_even_next_to_non_finite_values():
    x = torch.zeros(1, 4, 4)
    x[0, 0, 0], x[0, 3, 3] = math.inf, math.nan
    y = shift(x, 1, 1, mode="zeros")
    assert y[0, 0].eq(0).all() and y[0, :, 0].eq(0).all()  # filled pixels are exactly 0
    assert y[0, 1, 1] == math.inf
    assert torch.equal(shift(torch.arange(6).reshape(2, 3), 0, 1, mode="zeros"), torch.tensor([[0, 0, 1], [0, 3, 4]]))


@SETTINGS
@given(seeds, sizes, sizes, st.integers(-8, 8), st.integers(-8, 8))
def test_zeros_fractional_path_at_integer_shift_equals_integer_zeros(seed, h, w, dy, dx):
    x = rand(seed, 2, h, w)
    # the fractional companion forces the band-limited (zero-padded Fourier) path for the whole set
    out = shift_many(x, [(dy, dx), (0.5, -0.25)], mode="zeros")
    assert float((out[0] - shift(x, dy, dx, mode="zeros")).abs().max()) < 1e-11


def test_zeros_fractional_shift_does_not_depend_on_the_rest_of_the_set():
    # T_d x is defined per shift (padding ceil(|d|)); a larger companion shift must not change it
    x = rand(3, 2, 9, 10)
    alone = shift(x, 0.5, -1.25, mode="zeros")
    for companion in [(5, 0), (0, -7.5), (3.5, 4)]:
        together = shift_many(x, [(0.5, -1.25), companion], mode="zeros")
        assert float((together[0] - alone).abs().max()) < 1e-12
        assert float((together[1] - shift(x, *companion, mode="zeros")).abs().max()) < 1e-12


# --- shift_many -----------------------------------------------------------------------------------

mixed_shift = st.one_of(
    st.tuples(st.integers(-5, 5), st.integers(-5, 5)),
    st.tuples(st.floats(-5, 5, allow_nan=False), st.floats(-5, 5, allow_nan=False)),
)


@SETTINGS
@given(seeds, sizes, sizes, st.lists(mixed_shift, min_size=1, max_size=6), st.sampled_from(["circular", "zeros", "fourier"]))
def test_shift_many_equals_stacked_shift_for_mixed_lists(seed, h, w, shifts, mode):
    x = rand(seed, 2, 1, h, w)
    many = shift_many(x, shifts, mode=mode)
    assert many.shape == (len(shifts), 2, 1, h, w)
    stacked = torch.stack([shift(x, dy, dx, mode=mode) for dy, dx in shifts])
    assert float((many - stacked).abs().max()) < 1e-11


def test_fractional_shift_many_is_one_batched_fft(monkeypatch):
    calls = []
    real_fft2 = torch.fft.fft2

    def counting_fft2(*args, **kwargs):
        calls.append(args[0].shape)
        return real_fft2(*args, **kwargs)

    monkeypatch.setattr(torch.fft, "fft2", counting_fft2)
    x = rand(0, 4, 3, 9, 9)
    shifts = [(0.5 * k, -0.3 * k) for k in range(1, 8)]
    out = shift_many(x, shifts, mode="fourier")
    assert out.shape == (7, 4, 3, 9, 9)
    assert len(calls) == 1, f"{len(calls)} FFTs for 7 shifts: not vectorised"
    for k, (dy, dx) in enumerate(shifts):
        assert float((out[k] - shift(x, dy, dx, mode="fourier")).abs().max()) < TOL


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shifts", [[(1, 2)], [(0.5, 1.5)]])
@pytest.mark.parametrize("mode", ["circular", "zeros", "fourier"])
def test_dtype_and_shape_preserved(dtype, shifts, mode):
    x = rand(1, 2, 3, 6, 7, dtype=dtype)
    y = shift_many(x, shifts, mode=mode)
    assert y.dtype == dtype and y.shape == (1, 2, 3, 6, 7)


# --- crop -------------------------------------------------------------------------------------------


@SETTINGS
@given(seeds, st.integers(4, 14), st.integers(4, 14), st.data())
def test_crop_and_crop_many_against_slicing(seed, h, w, data):
    ch = data.draw(st.integers(1, h))
    cw = data.draw(st.integers(1, w))
    top0, left0 = (h - ch) // 2, (w - cw) // 2
    # every offset that keeps the window inside the image
    dys = st.integers(top0 + ch - h, top0)
    dxs = st.integers(left0 + cw - w, left0)
    shifts = data.draw(st.lists(st.tuples(dys, dxs), min_size=1, max_size=5))
    x = rand(seed, 2, h, w)
    many = crop_many(x, (ch, cw), shifts)
    assert many.shape == (len(shifts), 2, ch, cw)
    for k, (dy, dx) in enumerate(shifts):
        want = x[..., top0 - dy : top0 - dy + ch, left0 - dx : left0 - dx + cw]
        assert torch.equal(many[k], want)
        assert torch.equal(crop(x, dy, dx, (ch, cw)), want)


def test_crop_moves_content_like_shift():
    x = torch.zeros(10, 10)
    x[5, 5] = 1.0
    c0 = crop(x, 0, 0, (6, 6))
    c1 = crop(x, 1, -2, (6, 6))
    assert torch.equal(c1, shift(c0, 1, -2, mode="zeros"))


def test_crop_leaving_the_image_raises():
    x = torch.zeros(1, 10, 10)
    with pytest.raises(ValueError, match="leaves the 10x10 image"):
        crop(x, 3, 0, (6, 6))  # centred window starts at row 2: 3 rows up leaves the image
    with pytest.raises(ValueError, match="leaves the"):
        crop_many(x, (6, 6), [(0, 0), (0, -3)])
    with pytest.raises(ValueError, match="must fit inside the image size"):
        crop(x, 0, 0, (11, 4))
    with pytest.raises(ValueError, match="must be integers"):
        crop(x, 0.5, 0, (6, 6))


# --- bad input ----------------------------------------------------------------------------------


def test_bad_mode_raises():
    with pytest.raises(ValueError, match="unknown shift mode 'reflect'.*circular, zeros, fourier"):
        shift(torch.zeros(4, 4), 1, 1, mode="reflect")
    with pytest.raises(ValueError, match="unknown shift mode"):
        shift_many(torch.zeros(4, 4), [(0.5, 0)], mode="wrap")


def test_bad_shifts_and_tensors_raise():
    with pytest.raises(ValueError, match=r"shape \[S, 2\]"):
        shift_many(torch.zeros(4, 4), [(1, 2, 3)])
    with pytest.raises(ValueError, match="finite"):
        shift(torch.zeros(4, 4), float("nan"), 0)
    with pytest.raises(ValueError, match="at least 2 dims"):
        shift(torch.zeros(4), 1, 0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        shift([[1.0, 2.0]], 1, 0)
