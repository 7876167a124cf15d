"""LearnedPool2d (a learned depthwise filter with BlurPool's support) and alias_fraction."""

from __future__ import annotations

import pytest
import torch

import shiftlab as sl
from shiftlab.nn import BlurPool2d, LearnedPool2d, alias_fraction, binomial_kernel2d


@pytest.mark.parametrize("pad_type", ["reflect", "zeros", "replicate", "circular"])
@pytest.mark.parametrize("filt_size", [2, 3, 4, 5])
def test_binomial_init_is_blurpool_until_trained(pad_type: str, filt_size: int) -> None:
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
    learned = LearnedPool2d(3, stride=2, filt_size=filt_size, pad_type=pad_type, init="binomial").double()
    blur = BlurPool2d(3, stride=2, filt_size=filt_size, pad_type=pad_type).double()
    assert torch.allclose(learned(x), blur(x), atol=1e-14, rtol=0)
    assert learned(x).shape == (2, 3, 5, 5)


def test_random_init_learns_and_is_a_parameter() -> None:
    pool = LearnedPool2d(4, init="random")
    assert [name for name, _ in pool.named_parameters()] == ["weight"] and pool.weight.shape == (4, 1, 4, 4)
    assert not torch.allclose(pool.weight, binomial_kernel2d(4).expand(4, 1, 4, 4))
    out = pool(torch.randn(1, 4, 8, 8)).square().sum()
    out.backward()
    assert pool.weight.grad is not None and pool.weight.grad.abs().sum() > 0


def test_circular_learned_pool_is_exactly_equivariant_at_multiples_of_its_stride() -> None:
    pool = LearnedPool2d(2, stride=2, filt_size=4, pad_type="circular").double()
    sl.check_equivariant(pool, (2, 2, 8, 8), shifts=[(2, 0), (0, 4), (-2, 6)], atol=1e-12, rtol=0)
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():  # a shift by 1 is not a multiple of the stride: the output changes (aliasing)
        error = (pool(torch.roll(x, 1, -1)) - pool(x)).abs().max()
    assert error > 1e-2


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="init must be one of"):
        LearnedPool2d(2, init="gaussian")
    with pytest.raises(ValueError, match="filt_size must be in 2..7"):
        LearnedPool2d(2, filt_size=1)
    with pytest.raises(ValueError, match="channels"):
        LearnedPool2d(2)(torch.randn(1, 3, 8, 8))


def test_alias_fraction_of_known_filters() -> None:
    # a delta has a flat spectrum: 3/4 of its energy lies above pi/2 in one axis or the other
    assert float(alias_fraction(torch.tensor([[1.0]]))) == pytest.approx(0.75, abs=1e-12)
    box = torch.ones(2, 2) / 4  # |H|^2 = cos^2(w_y/2) cos^2(w_x/2): 1 - ((pi + 2) / (2 pi))^2 above pi/2
    assert float(alias_fraction(box, grid=512)) == pytest.approx(1 - ((torch.pi + 2) / (2 * torch.pi)) ** 2, abs=2e-3)
    shares = [float(alias_fraction(binomial_kernel2d(k))) for k in (2, 3, 4, 5, 7)]
    assert shares == sorted(shares, reverse=True) and shares[-1] < 0.01  # wider binomials alias less
    assert alias_fraction(torch.randn(5, 1, 4, 4)).shape == (5, 1)
    with pytest.raises(ValueError, match=r"\[\.\.\., k, k\]"):
        alias_fraction(torch.randn(4, 3))
