"""BlurPool (Zhang 2019): reference formula, shapes, filter, equivariance, input errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shiftlab.measure.shifts import shift
from shiftlab.nn import PAD_TYPES, BlurPool2d, binomial_kernel2d, blur_pool2d

FILT_SIZES = range(1, 8)
PADS = ["reflect", "replicate", "zeros", "circular"]

# Rows of Pascal's triangle, written out as in the reference implementation.
PASCAL_ROWS = {
    1: [1.0],
    2: [1.0, 1.0],
    3: [1.0, 2.0, 1.0],
    4: [1.0, 3.0, 3.0, 1.0],
    5: [1.0, 4.0, 6.0, 4.0, 1.0],
    6: [1.0, 5.0, 10.0, 10.0, 5.0, 1.0],
    7: [1.0, 6.0, 15.0, 20.0, 15.0, 6.0, 1.0],
}
F_PAD_MODE = {"reflect": "reflect", "replicate": "replicate", "zeros": "constant", "circular": "circular"}


def reference_blurpool(x: torch.Tensor, stride: int, filt_size: int, pad_type: str) -> torch.Tensor:
    """Straightforward re-derivation of the reference BlurPool forward (float64 numpy filter)."""
    if filt_size == 1:
        return x[:, :, ::stride, ::stride]
    a = np.array(PASCAL_ROWS[filt_size])
    filt = a[:, None] * a[None, :]
    filt = filt / filt.sum()
    weight = torch.from_numpy(filt)[None, None].repeat(x.shape[1], 1, 1, 1).to(x.dtype)
    lo, hi = int(1.0 * (filt_size - 1) / 2), int(np.ceil(1.0 * (filt_size - 1) / 2))
    padded = F.pad(x, [lo, hi, lo, hi], mode=F_PAD_MODE[pad_type])
    return F.conv2d(padded, weight, stride=stride, groups=x.shape[1])


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("pad_type", PADS)
@pytest.mark.parametrize("filt_size", FILT_SIZES)
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_matches_reference_formula(stride: int, filt_size: int, pad_type: str) -> None:
    torch.manual_seed(filt_size)
    x = torch.randn(2, 3, 11, 12, dtype=torch.float64)
    expected = reference_blurpool(x, stride, filt_size, pad_type)
    module = BlurPool2d(3, stride=stride, filt_size=filt_size, pad_type=pad_type).double()
    for out in (blur_pool2d(x, stride, filt_size, pad_type), module(x)):
        assert out.shape == expected.shape
        assert (out - expected).abs().max().item() < 1e-12


@pytest.mark.parametrize("pad_type", PADS)
@pytest.mark.parametrize("filt_size", FILT_SIZES)
@pytest.mark.parametrize("size", [(9, 12), (8, 7), (13, 13), (10, 10)])
@pytest.mark.parametrize("stride", [2, 3])
def test_output_shape(stride: int, size: tuple[int, int], filt_size: int, pad_type: str) -> None:
    h, w = size
    out = BlurPool2d(4, stride=stride, filt_size=filt_size, pad_type=pad_type)(torch.rand(2, 4, h, w))
    assert out.shape == (2, 4, math.ceil(h / stride), math.ceil(w / stride))


@pytest.mark.parametrize("filt_size", FILT_SIZES)
def test_filter_is_normalised_symmetric_binomial(filt_size: int) -> None:
    k = binomial_kernel2d(filt_size, dtype=torch.float64)
    assert k.shape == (filt_size, filt_size)
    assert k.sum().item() == 1.0
    assert torch.equal(k, k.T)
    assert torch.equal(k, k.flip(0)) and torch.equal(k, k.flip(1))
    row = torch.tensor(PASCAL_ROWS[filt_size], dtype=torch.float64)
    assert torch.equal(k, torch.outer(row, row) / row.sum() ** 2)


def test_module_filter_buffer() -> None:
    pool = BlurPool2d(5, filt_size=3).double()
    assert pool.filt.shape == (5, 1, 3, 3)
    assert pool.filt.dtype == torch.float64
    assert torch.equal(pool.filt[4, 0], binomial_kernel2d(3, dtype=torch.float64))
    assert "filt" not in pool.state_dict()  # non-persistent: a constant, not a learned weight


def test_less_unaligned_error_than_strided_subsampling() -> None:
    """Odd (unaligned) shifts: compare f(T_d x) with the Fourier shift of f(x) by d / 2."""
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32, dtype=torch.float64)

    def unaligned_error(filt_size: int, d: tuple[int, int]) -> float:
        def f(t: torch.Tensor) -> torch.Tensor:
            return blur_pool2d(t, stride=2, filt_size=filt_size, pad_type="circular")

        ideal = shift(f(x), d[0] / 2, d[1] / 2, mode="circular")
        return relative_error(f(torch.roll(x, d, dims=(-2, -1))), ideal)

    for d in [(1, 0), (0, 1), (1, 1), (-1, 3)]:
        errors = [unaligned_error(k, d) for k in FILT_SIZES]  # k = 1 is x[..., ::2, ::2]
        assert errors[0] > 1.0  # subsampling white noise aliases badly
        assert errors[3] < 0.5 * errors[0]  # default filt_size 4
        assert all(a > b for a, b in itertools.pairwise(errors))  # wider blur, less aliasing


@pytest.mark.parametrize("filt_size", FILT_SIZES)
@pytest.mark.parametrize("stride", [2, 3])
def test_circular_padding_exactly_equivariant_to_aligned_shifts(filt_size: int, stride: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 3, 12, 18, dtype=torch.float64)
    pool = BlurPool2d(3, stride=stride, filt_size=filt_size, pad_type="circular").double()
    fx = pool(x)
    for ky, kx in [(1, 0), (0, 1), (1, -2), (3, 5)]:
        shifted = pool(torch.roll(x, (stride * ky, stride * kx), dims=(-2, -1)))
        assert (shifted - torch.roll(fx, (ky, kx), dims=(-2, -1))).abs().max().item() < 1e-12


def test_pad_types_constant() -> None:
    assert sorted(PAD_TYPES) == sorted(PADS)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"filt_size": 0}, ValueError, r"filt_size must be in 1\.\.7, got 0"),
        ({"filt_size": 8}, ValueError, r"filt_size must be in 1\.\.7, got 8"),
        ({"filt_size": 2.0}, TypeError, "filt_size must be an int"),
        ({"pad_type": "zero"}, ValueError, "unknown pad_type 'zero'"),
        ({"stride": 0}, ValueError, "stride must be >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        BlurPool2d(3, **kwargs)
    with pytest.raises(error, match=match):
        blur_pool2d(torch.rand(1, 3, 8, 8), **kwargs)


def test_bad_inputs() -> None:
    pool = BlurPool2d(3)
    with pytest.raises(ValueError, match=r"expected a 4-D input \[N, C, H, W\], got shape \(3, 8, 8\)"):
        pool(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="input has 4 channels but the layer was built for channels=3"):
        pool(torch.rand(1, 4, 8, 8))
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        blur_pool2d(np.zeros((1, 3, 8, 8)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channels must be >= 1"):
        BlurPool2d(0)
