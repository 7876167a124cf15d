"""Tests of :func:`shiftlab.check_equivariant` and :func:`shiftlab.check_invariant`."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

import shiftlab as sl

pytestmark = pytest.mark.usefixtures("one_thread")


def seeded(module: nn.Module, seed: int = 0, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return module.to(dtype)


class Offset(nn.Module):
    """Adds ``eps`` to the pixel (0, 0) of every map: breaks equivariance by exactly ``eps``."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x):
        y = x.clone()
        y[..., 0, 0] += self.eps
        return y


class Scale(nn.Module):
    """Multiplies the pixel (0, 0) of every map by ``1 + eps``: a relative error of ``eps``."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x):
        y = x.clone()
        y[..., 0, 0] *= 1 + self.eps
        return y


class RowWeighted(nn.Module):
    """Global sum weighted by (1 + eps * row): invariant to column shifts only."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x):
        rows = torch.arange(x.shape[-2], dtype=x.dtype)[:, None]
        return (x * (1 + self.eps * rows)).sum(dim=(-2, -1))


def test_pass_on_equivariant_and_invariant_modules():
    conv = seeded(nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"))
    sl.check_equivariant(conv, (2, 8, 8))
    sl.check_equivariant(seeded(nn.Conv2d(2, 3, 3, stride=2, padding=1, padding_mode="circular")), (2, 8, 8))
    sl.check_invariant(nn.Sequential(conv, nn.AdaptiveMaxPool2d(1)), (2, 8, 8))
    sl.check_invariant(RowWeighted(0.5), (1, 6, 6), shifts=[(0, 1), (0, 5)])


def test_equivariance_failure_names_worst_shift_error_and_tolerance():
    conv = seeded(nn.Conv2d(1, 2, 3, padding=1))  # zero padding: breaks at the border
    with pytest.raises(AssertionError) as info:
        sl.check_equivariant(conv, (1, 8, 8), shifts=[(0, 0), (1, 0), (3, 3)])
    msg = str(info.value)
    assert msg.startswith("not shift equivariant: worst shift (dy, dx) = (")
    assert "tolerance atol=1e-10 + rtol=1e-10*|reference|" in msg
    assert "2 of 3 shifts fail" in msg  # the zero shift is fine
    # the named shift really is the worst one, and the error is the largest abs error there
    x = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        errs = {d: float((conv(sl.shift(x, *d)) - sl.shift(conv(x), *d)).abs().max()) for d in [(1, 0), (3, 3)]}
    worst = max(errs, key=errs.get)
    assert f"(dy, dx) = ({worst[0]}, {worst[1]})" in msg
    reported = float(re.search(r"max abs error ([0-9.e+-]+)", msg).group(1))
    assert reported == pytest.approx(errs[worst], rel=1e-3)


def test_invariance_failure_names_the_worst_shift_exactly():
    # RowWeighted changes under row shifts; the largest change is at the largest row shift
    with pytest.raises(AssertionError, match=r"not shift invariant: worst shift \(dy, dx\) = \(3, 0\) .*2 of 4 shifts fail"):
        sl.check_invariant(RowWeighted(0.5), (1, 6, 6), shifts=[(0, 0), (1, 0), (3, 0), (0, 2)])


def test_atol_and_rtol_are_honoured():
    # Offset(eps) is off by exactly eps (absolute) at the pixels that (0, 0) moves to and from
    module = Offset(1e-6)
    with pytest.raises(AssertionError, match=r"max abs error 1\.000e-06 > tolerance atol=1e-07"):
        sl.check_equivariant(module, (1, 6, 6), shifts=[(1, 1)], atol=1e-7, rtol=0)
    sl.check_equivariant(module, (1, 6, 6), shifts=[(1, 1)], atol=2e-6, rtol=0)
    # Scale(eps) is off by eps * |value| (relative): rtol decides, whatever the magnitude
    scale = Scale(1e-6)
    sl.check_equivariant(scale, (1, 6, 6), shifts=[(1, 1)], atol=0, rtol=2e-6)
    with pytest.raises(AssertionError, match=r"rtol=5e-07"):
        sl.check_equivariant(scale, (1, 6, 6), shifts=[(1, 1)], atol=0, rtol=5e-7)
    with pytest.raises(AssertionError, match=r"atol=1e-09 \+ rtol=0\*"):
        sl.check_equivariant(scale, (1, 6, 6), shifts=[(1, 1)], atol=1e-9, rtol=0)
    # the same for invariance
    with pytest.raises(AssertionError):
        sl.check_invariant(RowWeighted(1e-9), (1, 6, 6), shifts=[(1, 0)], atol=1e-12, rtol=0)
    sl.check_invariant(RowWeighted(1e-9), (1, 6, 6), shifts=[(1, 0)], atol=1e-6, rtol=0)


def test_float32_defaults_are_looser():
    conv = seeded(nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), dtype=torch.float32)
    sl.check_equivariant(conv, (2, 8, 8))  # float32 rounding under the float32 default tolerance
    with pytest.raises(AssertionError, match=r"atol=1e-05 \+ rtol=1.3e-06"):
        sl.check_equivariant(Offset(1e-3).float(), (1, 6, 6), shifts=[(1, 1)], dtype=torch.float32)


def test_zeros_mode_with_border_passes_for_zero_padded_conv():
    conv = seeded(nn.Conv2d(1, 2, 3, padding=1))
    with pytest.raises(AssertionError, match="not shift equivariant"):
        sl.check_equivariant(conv, (1, 10, 10), mode="zeros")  # content lost at the far border differs
    sl.check_equivariant(conv, (1, 10, 10), mode="zeros", border=1)
    sl.check_equivariant(conv, (1, 10, 10), mode="circular", border=1)  # circular shifts too, away from the border
    with pytest.raises(AssertionError):
        sl.check_equivariant(conv, (1, 10, 10), mode="circular")


def test_input_shapes():
    conv = seeded(nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"))
    seen = []
    conv.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    sl.check_equivariant(conv, (2, 6, 6), shifts=[(1, 2)])
    assert seen[0] == (2, 2, 6, 6)  # (C, H, W): two images are drawn
    seen.clear()
    sl.check_equivariant(conv, (5, 2, 6, 6), shifts=[(1, 2)])
    assert seen[0] == (5, 2, 6, 6)
    for bad in [(6, 6), (1, 2, 3, 6, 6), (2, 0, 6), (0, 2, 6, 6)]:
        with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\) or \(N, C, H, W\)"):
            sl.check_equivariant(conv, bad)
        with pytest.raises(ValueError, match="input_shape must be"):
            sl.check_invariant(conv, bad)


def test_shift_not_a_multiple_of_the_stride_and_non_map_outputs():
    pool = nn.MaxPool2d(2)
    with pytest.raises(ValueError, match=r"every shift must be a multiple of the stride \(2, 2\)"):
        sl.check_equivariant(pool, (1, 8, 8), shifts=[(2, 0), (1, 0)])
    with pytest.raises(ValueError, match="output size .* does not divide input size"):
        sl.check_equivariant(nn.MaxPool2d(2, stride=1), (1, 8, 8))
    with pytest.raises(ValueError, match="4-D output map; use check_invariant"):
        sl.check_equivariant(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), (1, 8, 8))
    with pytest.raises(ValueError, match="too large for 8x8"):
        sl.check_equivariant(pool, (1, 8, 8), shifts=[(8, 0)])


def test_nan_outputs_fail_instead_of_passing():
    class NaNMap(nn.Module):
        def forward(self, x):
            return x * math.nan

    with pytest.raises(AssertionError, match="max abs error nan"):
        sl.check_equivariant(NaNMap(), (1, 6, 6), shifts=[(1, 0)])
    with pytest.raises(AssertionError, match="not shift invariant"):
        sl.check_invariant(nn.Sequential(NaNMap(), nn.AdaptiveAvgPool2d(1)), (1, 6, 6), shifts=[(1, 0)])


def test_module_mode_restored_also_after_failure():
    model = seeded(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Dropout(0.5)))
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    # BN in eval mode is affine, Dropout the identity; in training mode this would fail at random
    sl.check_equivariant(model, (1, 8, 8), border=1)
    assert model.training and all(m.training for m in model.modules())
    with pytest.raises(AssertionError):
        sl.check_equivariant(model, (1, 8, 8))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())  # BN stats untouched
    assert all(not m._forward_hooks for m in model.modules())
    model.eval()
    sl.check_invariant(nn.Sequential(model, nn.AdaptiveAvgPool2d(1)), (1, 8, 8), shifts=[(0, 0)])
    assert not model.training


def test_default_shift_sets():
    # default circular shifts are every multiple of the stride: a pool that only breaks at odd shifts passes
    sl.check_equivariant(nn.AvgPool2d(2), (1, 8, 8))
    # default invariance shifts cover every circular shift: a break at a single shift is found
    class BreaksAtFive(nn.Module):
        def forward(self, x):
            return x.sum(dim=(-2, -1)) + 1e-3 * x[..., 5, 0]

    with pytest.raises(AssertionError, match=r"of 64 shifts fail"):
        sl.check_invariant(BreaksAtFive(), (1, 8, 8))


@pytest.mark.parametrize("check", [sl.check_equivariant, sl.check_invariant])
def test_a_mismatched_module_gets_an_error_naming_the_input_and_the_fix(check):
    conv = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular").double()
    with pytest.raises(ValueError, match=r"random input of shape \(2, 3, 8, 8\).*Check input_shape"):
        check(conv, (3, 8, 8))
    with pytest.raises(ValueError, match=r"\(torch.float32\).*dtype"):
        check(conv, (2, 8, 8), dtype=torch.float32)

    class Pair(torch.nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(ValueError, match="returns one tensor, got tuple"):
        check(Pair(), (2, 8, 8))


def test_checks_leave_the_global_rng_alone():
    conv = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular").double()
    state = torch.get_rng_state()
    sl.check_equivariant(conv, (2, 8, 8))
    sl.check_invariant(torch.nn.Sequential(conv, torch.nn.AdaptiveAvgPool2d(1)), (2, 8, 8))
    assert torch.equal(state, torch.get_rng_state())
