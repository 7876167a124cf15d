"""The per-layer comparison (:mod:`shiftlab.measure.layer_errors`) against the implementation it
replaced (``legacy_profile.py``: every target materialised with ``shift_many``): the same sums on
every zoo model, circular and zero fill, float32 and float64, shifts that are fractional at a
layer's resolution, interior sums, crop mode, both memory layouts; and its parts against their
definitions (the separable band-limited shift with its corner correction against the 2-D FFT of
``shift_many``, slice-wise steps against ``shift_many``).

Tolerances: a difference in a sum is measured against the reference's own sum of squares over the
same pixels (the denominators of the relative errors): at most 1e-12 in float64 and
:data:`FLOAT32_RTOL` in float32 (rounding of the per-row sums and of the matrix shift against the
FFT's; seen up to 3e-7).
"""

from __future__ import annotations

import importlib

import pytest
import torch
from legacy_profile import LegacyLayerAccumulator
from torch import nn

import shiftlab as sl
from shiftlab.measure.equivariance import equivariance_stats
from shiftlab.measure.equivariance_statistics import EquivarianceStats
from shiftlab.measure.layer_errors import (
    DENSE_BUDGET,
    DENSE_PIXELS,
    LayerComparison,
    ShiftPlan,
    Source,
    _corner_dot,
    _difference,
    _source_map,
    axis_matrix,
    plan_shifts,
)
from shiftlab.measure.layer_records import LayerAccumulator, interior_mask
from shiftlab.measure.shifts import shift_many

recorder_module = importlib.import_module("shiftlab.measure.equivariance_recorder")

pytestmark = pytest.mark.usefixtures("one_thread")

FLOAT32_RTOL = 1e-5
FLOAT64_RTOL = 1e-12
#: Whole and fractional shifts at the input; at the stride-2/4/8 layers of the zoo most are
#: fractional, some in one axis only, some negative, one beyond half the map of the deepest layers.
SHIFTS = [(0, 0), (0, 1), (1, 1), (2, 0), (4, 4), (-3, 5), (1, -7), (6, 6), (0.5, 0.25), (-1.5, 2.5), (9, -2)]


def _rtol(dtype: torch.dtype) -> float:
    return FLOAT64_RTOL if dtype == torch.float64 else FLOAT32_RTOL


def _legacy_stats(monkeypatch: pytest.MonkeyPatch, model: nn.Module, x: torch.Tensor, **kwargs: object) -> EquivarianceStats:
    with monkeypatch.context() as patch:
        patch.setattr(recorder_module, "LayerAccumulator", LegacyLayerAccumulator)
        return equivariance_stats(model, x, **kwargs)


def assert_same_sums(new: LayerAccumulator, old: LayerAccumulator, rtol: float) -> None:
    """Every per-shift sum of ``new`` equals that of ``old`` within ``rtol`` of the reference's
    sum of squares over the same pixels; pixel counts and the output's range exactly."""
    assert (new.name, new.shape, new.border) == (old.name, old.shape, old.border)
    for name, scale in (("sq_err", old.sq_ref), ("sq_ref", old.sq_ref), ("sq_err_in", old.sq_ref_in),
                        ("sq_ref_in", old.sq_ref_in)):
        gap = (getattr(new, name) - getattr(old, name)).abs()
        assert bool((gap <= rtol * scale).all()), (new.name, name, getattr(new, name), getattr(old, name))
    assert torch.equal(new.n_in, old.n_in), new.name
    assert (new.peak_lo, new.peak_hi) == (old.peak_lo, old.peak_hi), new.name


def assert_same_stats(new: EquivarianceStats, old: EquivarianceStats, rtol: float) -> None:
    assert list(new.layers) == list(old.layers)
    for site, record in new.layers.items():
        assert_same_sums(record, old.layers[site], rtol)
    assert (new.output is None) == (old.output is None)
    if new.output is not None and old.output is not None:
        assert_same_sums(new.output, old.output, rtol)
        assert torch.equal(new.output.constant_maps, old.output.constant_maps)


@pytest.mark.parametrize("name", sl.zoo.names())
def test_every_zoo_model_gives_the_old_sums(monkeypatch, name):
    """Circular and zero fill, float32 and float64, shifts fractional at the layers' resolution."""
    for dtype in (torch.float64, torch.float32):
        model = sl.zoo.build(name, num_classes=10, in_channels=1, width=4, input_size=16, seed=0).to(dtype).eval()
        x = torch.rand(3, 1, 16, 16, dtype=dtype, generator=torch.Generator().manual_seed(1))
        for mode in ("circular", "zeros"):
            kwargs = dict(shifts=SHIFTS, mode=mode, batch_size=16)
            new = equivariance_stats(model, x, **kwargs)
            assert any(not bool(r.aligned.all()) for r in new.layers.values())  # fractional at some layer
            assert_same_stats(new, _legacy_stats(monkeypatch, model, x, **kwargs), _rtol(dtype))


class OddNet(nn.Module):
    """Two inputs channels, odd and even map sizes, a map smaller than a shift, a dense output."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 5, 3, padding=1, padding_mode="circular")
        self.b = nn.Conv2d(5, 4, 3, stride=2, padding=1)
        self.c = nn.AvgPool2d(2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


@pytest.mark.parametrize("size", [15, 14])
@pytest.mark.parametrize("mode", ["circular", "zeros", "fourier"])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_odd_and_even_sizes_layouts_and_fourier_mode(monkeypatch, size, mode, layout):
    torch.manual_seed(0)
    model = OddNet().double().eval().to(memory_format=layout)
    x = torch.randn(4, 2, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    kwargs = dict(shifts=SHIFTS + [(0.5, -0.5), (-0.75, 0.5)], mode=mode, batch_size=24)
    assert_same_stats(equivariance_stats(model, x, **kwargs), _legacy_stats(monkeypatch, model, x, **kwargs), 1e-12)


def test_crop_mode_and_an_explicit_border(monkeypatch):
    model = sl.zoo.build("blurstrided_gap", num_classes=10, in_channels=1, width=4, input_size=16, seed=0)
    model = model.double().eval()
    x = torch.rand(3, 1, 24, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for border in (None, 2):
        kwargs = dict(shifts=[(0, 0), (1, 0), (2, 2), (-3, 1), (4, -4)], mode="crop", crop_size=(16, 16),
                      border=border, batch_size=12)
        assert_same_stats(equivariance_stats(model, x, **kwargs), _legacy_stats(monkeypatch, model, x, **kwargs), 1e-12)


def test_half_precision_maps_are_compared_in_float32():
    acc = LayerAccumulator("x", "Identity", (3, 8, 8), (16, 16), 1, torch.tensor([[0.0, 0.5], [1.0, 1.0]]), "circular")
    old = LegacyLayerAccumulator("x", "Identity", (3, 8, 8), (16, 16), 1, acc.offsets, "circular")
    out = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(4)).half()
    acc.add(out, 2, torch.tensor([0, 1]))
    old.add(out, 2, torch.tensor([0, 1]))
    assert_same_sums(acc, old, FLOAT32_RTOL)


@pytest.mark.parametrize("count", [12, 600])
def test_small_maps_compare_densely_unless_the_shift_set_is_large(count):
    """8x8 maps: dense operators for 12 shifts, slices for 600 (their operators would pass
    DENSE_BUDGET); the same sums either way."""
    offsets = torch.tensor([[(k % 23) / 2 - 5.5, (k // 23) / 4 - 3.0] for k in range(count)], dtype=torch.float64)
    acc = LayerAccumulator("x", "Conv2d", (3, 8, 8), (16, 16), 1, offsets, "circular")
    old = LegacyLayerAccumulator("x", "Conv2d", (3, 8, 8), (16, 16), 1, offsets, "circular")
    assert acc._compare.dense == (count * 64 ** 2 <= DENSE_BUDGET) and DENSE_PIXELS >= 64
    gen = torch.Generator().manual_seed(8)
    for index in (torch.tensor([0, 5, 11]), torch.tensor([1, 2, 7, 9])):
        out = torch.randn((1 + len(index)) * 2, 3, 8, 8, dtype=torch.float64, generator=gen)
        acc.add(out, 2, index)
        old.add(out, 2, index)
    assert_same_sums(acc, old, FLOAT64_RTOL)


def _accumulate(x: torch.Tensor, offsets: torch.Tensor, mode: str) -> LayerAccumulator:
    """The sums of images ``x [n, C, 12, 12]`` against shifted copies disturbed by a term that
    does not move, so every shift has an error."""
    acc = LayerAccumulator("conv", "Conv2d", (x.shape[1], 12, 12), (24, 24), 1, offsets, mode)
    moved = shift_many(x, offsets, "zeros" if mode == "crop" else mode) + 0.1 * x.square()
    acc.add(torch.cat([x, moved.flatten(0, 1)]), x.shape[0], torch.arange(len(offsets)))
    return acc


@pytest.mark.parametrize("mode", ["circular", "zeros"])
def test_shards_add_up(mode):
    x = torch.randn(6, 3, 12, 12, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    offsets = torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.5, 1.0], [-1.5, 0.5]], dtype=torch.float64)
    whole = _accumulate(x, offsets, mode)
    parts = _accumulate(x[:2], offsets, mode) + _accumulate(x[2:5], offsets, mode) + _accumulate(x[5:], offsets, mode)
    assert_same_sums(parts, whole, 1e-14)
    assert bool((whole.sq_err[1:] > 0).all()) and bool((whole.sq_err_in[1:] > 0).all())


# --- the parts against their definitions ---------------------------------------------------------------


@pytest.mark.parametrize("hw", [(6, 8), (7, 8), (6, 5), (7, 9)])
@pytest.mark.parametrize("mode", ["circular", "zeros"])
def test_separable_shift_with_corner_correction_is_the_2d_fft_shift(hw, mode):
    """Source and step of every kind of shift reproduce ``shift_many`` (the 2-D FFT when fractional)."""
    x = torch.randn(2, 3, *hw, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    offsets = torch.tensor([[0.5, 0.5], [-0.25, 1.75], [2.0, -0.5], [0.5, -3.0], [-2.0, 3.0], [1.5, 2.5]],
                           dtype=torch.float64)
    plans = plan_shifts(offsets, mode)
    assert any(p.source is not None and p.source.corner(hw) for p in plans) == (hw[0] % 2 == 0 and hw[1] % 2 == 0)
    for plan, d in zip(plans, offsets, strict=True):
        src = x if plan.source is None else _source_map(x, plan.source, _corner_dot(x))
        target = -_difference(torch.zeros_like(x), src, plan.step, mode == "circular", torch.empty_like(x))
        assert torch.allclose(target, shift_many(x, d[None], mode)[0], rtol=0, atol=1e-12), (plan, d)


def test_plans_share_sources_only_where_the_shift_factors():
    offsets = torch.tensor([[0.5, 0.0], [2.5, 0.0], [-1.5, 1.0], [3.0, 4.0]], dtype=torch.float64)
    circular = plan_shifts(offsets, "circular")
    assert {p.source for p in circular[:3]} == {Source(0.5, 0.0, False)}
    assert [p.step for p in circular] == [(0, 0), (2, 0), (-2, 1), (3, 4)] and circular[3].source is None
    zeros = plan_shifts(offsets, "zeros")
    assert len({p.source for p in zeros[:3]}) == 3 and zeros[2] == ShiftPlan(Source(-1.5, 0.0, True), (0, 1))


def test_axis_matrix_is_the_band_limited_shift_of_each_column():
    v = torch.randn(9, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    for d, padded, mode in ((0.3, False, "circular"), (-1.5, True, "zeros")):
        m = axis_matrix(9, d, padded, torch.float64, torch.device("cpu"))
        expected = shift_many(v.T[:, None, :], [(0.0, d)], mode)[0, :, 0, :].T
        assert torch.allclose(m @ v, expected, rtol=0, atol=1e-13)


def test_interior_must_be_a_rectangle():
    offsets = torch.zeros(1, 2, dtype=torch.float64)
    mask = interior_mask(offsets, (6, 6), 1)
    mask[0, 2, 2] = False
    with pytest.raises(ValueError, match="rectangle"):
        LayerComparison(offsets, "circular", mask)
