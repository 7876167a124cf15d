"""Adaptive polyphase sampling (Chaman & Dokmanic 2021): exact invariance, ties, batching, errors."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.nn import APSPool2d, BlurPool2d, aps_pool2d

NORMS = [1, 2, math.inf, "inf"]


def all_circular_shifts(x: torch.Tensor) -> torch.Tensor:
    """``x [1, C, H, W]`` -> ``[H * W, C, H, W]``, every circular shift in raster order."""
    h, w = x.shape[-2:]
    return torch.cat([torch.roll(x, (dy, dx), dims=(-2, -1)) for dy in range(h) for dx in range(w)])


def small_net(pool: Callable[[int], nn.Module], width: int = 6) -> nn.Sequential:
    """conv3x3 (circular) -> ReLU -> pool -> conv3x3 (circular) -> ReLU -> pool -> GAP -> linear."""
    return nn.Sequential(
        nn.Conv2d(2, width, 3, padding=1, padding_mode="circular"),
        nn.ReLU(),
        pool(width),
        nn.Conv2d(width, width, 3, padding=1, padding_mode="circular"),
        nn.ReLU(),
        pool(width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 5),
    ).double()


def max_shift_error(net: nn.Module, size: int, seed: int = 0) -> float:
    """Max |net(T_d x) - net(x)| over all ``size * size`` circular shifts of one random image."""
    torch.manual_seed(seed)
    x = torch.randn(1, 2, size, size, dtype=torch.float64)
    with torch.no_grad():
        out = net(all_circular_shifts(x))
    return (out - out[:1]).abs().max().item()


# norm 1 with a blur at stride 2 is degenerate after ReLU (see test_l1_with_blur_ties_...).
INVARIANT_CONFIGS = [(norm, 1) for norm in NORMS] + [(norm, 3) for norm in NORMS if norm != 1]


@pytest.mark.parametrize(("norm", "filt_size"), INVARIANT_CONFIGS)
def test_aps_net_exactly_invariant_to_every_circular_shift(norm: float | str, filt_size: int) -> None:
    torch.manual_seed(0)
    net = small_net(lambda c: APSPool2d(c, stride=2, norm=norm, filt_size=filt_size))
    assert max_shift_error(net, 16) < 1e-12


@pytest.mark.parametrize("filt_size", [1, 3])
@pytest.mark.parametrize("norm", NORMS)
def test_aps_net_stride3_exactly_invariant(norm: float | str, filt_size: int) -> None:
    torch.manual_seed(0)
    net = small_net(lambda c: APSPool2d(c, stride=3, norm=norm, filt_size=filt_size))
    assert max_shift_error(net, 18) < 1e-12


@pytest.mark.parametrize("filt_size", range(2, 8))
def test_l1_with_blur_ties_every_phase_on_nonnegative_input_at_stride2(filt_size: int) -> None:
    """A binomial blur splits each pixel's mass equally between the phases: L1 cannot choose."""
    torch.manual_seed(8)
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)  # non-negative, like a ReLU output
    blurred = BlurPool2d(3, stride=1, filt_size=filt_size, pad_type="circular").double()(x)
    norms = torch.stack([blurred[..., i::2, j::2].abs().sum() for i in range(2) for j in range(2)])
    assert (norms.max() - norms.min()).item() < 1e-12 * norms.max().item()
    with pytest.warns(UserWarning, match="same L1 norm on non-negative inputs .* invariance is lost"):
        APSPool2d(3, stride=2, norm=1, filt_size=filt_size)


@pytest.mark.parametrize(("norm", "stride", "filt_size"), [(2, 2, 3), (1, 2, 1), (1, 3, 3)])
def test_no_warning_for_non_degenerate_configs(norm: int, stride: int, filt_size: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        APSPool2d(3, stride=stride, norm=norm, filt_size=filt_size)


def test_aps_net_still_invariant_after_training() -> None:
    torch.manual_seed(0)
    net = small_net(lambda c: APSPool2d(c, stride=2, filt_size=3))
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    x = torch.randn(16, 2, 16, 16, dtype=torch.float64)
    y = torch.randint(0, 5, (16,))
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    assert all((p - q).abs().max() > 1e-4 for p, q in zip(net.parameters(), before, strict=True))
    assert max_shift_error(net, 16, seed=1) < 1e-12


def test_strided_subsampling_net_is_not_invariant() -> None:
    torch.manual_seed(0)
    net = small_net(lambda c: BlurPool2d(c, stride=2, filt_size=1))  # plain x[..., ::2, ::2]
    assert max_shift_error(net, 16) > 1e-3


@pytest.mark.parametrize("stride", [2, 3])
def test_layer_output_is_a_circular_shift_of_unshifted_output(stride: int) -> None:
    torch.manual_seed(2)
    x = torch.randn(1, 3, 6 * stride, 6 * stride, dtype=torch.float64)
    fx = aps_pool2d(x, stride=stride)
    for d in [(1, 0), (0, 1), (1, 2), (5, 4)]:
        out = aps_pool2d(torch.roll(x, d, dims=(-2, -1)), stride=stride)
        # content moved by d: the output moves by floor-or-ceil of d / stride
        candidates = [
            torch.roll(fx, (ey, ex), dims=(-2, -1))
            for ey in (d[0] // stride, -(-d[0] // stride))
            for ex in (d[1] // stride, -(-d[1] // stride))
        ]
        assert any(torch.equal(out, c) for c in candidates)


def test_ties_pick_first_phase_in_raster_order() -> None:
    x = torch.zeros(3, 1, 4, 4, dtype=torch.float64)
    # sample 0: phases (0, 1) and (1, 0) tie -> (0, 1), flat index 1
    x[0, 0, 0, 1] = 1.0
    x[0, 0, 1, 0] = -1.0
    # sample 1: phases (1, 0) and (1, 1) tie -> (1, 0), flat index 2
    x[1, 0, 3, 2] = 2.0
    x[1, 0, 1, 3] = 2.0
    # sample 2: all zero, every phase ties -> (0, 0)
    for norm in NORMS:
        out, idx = aps_pool2d(x, stride=2, norm=norm, return_indices=True)
        assert idx.tolist() == [1, 2, 0]
        assert torch.equal(out[0], x[0, :, 0::2, 1::2])
        assert torch.equal(out[1], x[1, :, 1::2, 0::2])


@pytest.mark.parametrize("stride", [2, 3])
def test_batch_choices_differ_and_match_single_samples(stride: int) -> None:
    torch.manual_seed(3)
    n = stride * stride
    x = 0.1 * torch.randn(n, 4, 3 * stride, 3 * stride, dtype=torch.float64)
    for b in range(n):  # sample b gets a spike in phase b
        x[b, 1, b // stride + stride, b % stride] = 10.0
    out, idx = aps_pool2d(x, stride=stride, return_indices=True)
    assert idx.tolist() == list(range(n))
    for b in range(n):
        single, single_idx = aps_pool2d(x[b : b + 1], stride=stride, return_indices=True)
        assert torch.equal(out[b : b + 1], single)
        assert single_idx.item() == idx[b].item()
        i, j = divmod(b, stride)
        assert torch.equal(out[b], x[b, :, i::stride, j::stride])


@pytest.mark.parametrize("norm", NORMS)
def test_chooses_largest_norm_phase(norm: float | str) -> None:
    torch.manual_seed(4)
    x = torch.randn(5, 3, 9, 12, dtype=torch.float64)
    order = math.inf if norm == "inf" else float(norm)
    _, idx = aps_pool2d(x, stride=3, norm=norm, return_indices=True)
    for b in range(5):
        phases = [x[b, :, i::3, j::3] for i in range(3) for j in range(3)]
        norms = [torch.linalg.vector_norm(p, ord=order).item() for p in phases]
        assert idx[b].item() == max(range(9), key=lambda k: (norms[k], -k))


def test_blur_is_applied_before_selection() -> None:
    torch.manual_seed(5)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    blurred = BlurPool2d(3, stride=1, filt_size=3, pad_type="circular").double()(x)
    assert torch.equal(aps_pool2d(x, filt_size=3), aps_pool2d(blurred))
    assert not torch.allclose(aps_pool2d(x, filt_size=3), aps_pool2d(x))


def test_module_matches_functional_and_returns_indices() -> None:
    torch.manual_seed(6)
    x = torch.randn(4, 3, 8, 8)
    pool = APSPool2d(3, norm="inf", filt_size=3, stride=2, pad_type="reflect", return_indices=True)
    out, idx = pool(x)
    ref_out, ref_idx = aps_pool2d(x, norm="inf", filt_size=3, pad_type="reflect", return_indices=True)
    assert torch.equal(out, ref_out) and torch.equal(idx, ref_idx)
    assert idx.dtype == torch.long and idx.shape == (4,)
    assert isinstance(APSPool2d(3)(x), torch.Tensor)


def test_gradient_flows_to_chosen_phase_only() -> None:
    torch.manual_seed(7)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    out, idx = aps_pool2d(x, return_indices=True)
    out.sum().backward()
    for b in range(2):
        expected = torch.zeros(3, 6, 6, dtype=torch.float64)
        i, j = divmod(idx[b].item(), 2)
        expected[:, i::2, j::2] = 1.0
        assert torch.equal(x.grad[b], expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stride": 1}, "stride must be >= 2, got 1"),
        ({"norm": 3}, r"unknown norm 3; expected 1, 2 or inf"),
        ({"norm": "l2"}, "unknown norm 'l2'"),
        ({"filt_size": 9}, r"filt_size must be in 1\.\.7"),
        ({"pad_type": "mirror"}, "unknown pad_type 'mirror'"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        APSPool2d(3, **kwargs)
    with pytest.raises(ValueError, match=match):
        aps_pool2d(torch.rand(1, 3, 8, 8), **kwargs)


def test_bad_inputs() -> None:
    pool = APSPool2d(3, stride=2)
    with pytest.raises(ValueError, match=r"divisible by stride=2, got 7x8; crop, pad or resize"):
        pool(torch.rand(1, 3, 7, 8))
    with pytest.raises(ValueError, match=r"divisible by stride=3, got 9x10"):
        aps_pool2d(torch.rand(1, 3, 9, 10), stride=3)
    with pytest.raises(ValueError, match="input has 2 channels but the layer was built for channels=3"):
        pool(torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="expected a 4-D input"):
        pool(torch.rand(3, 8, 8))
