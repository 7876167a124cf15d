"""The seed question's claims C1-C4 (DESIGN section 1), verified exactly in float64 on random weights.

Every network is built from a fixed seed; "exact" means below 1e-12 (relative or absolute) in float64.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import shiftlab as sl

pytestmark = pytest.mark.usefixtures("one_thread")


EXACT = 1e-12
ALL_12 = list(itertools.product(range(12), repeat=2))  # every circular shift of a 12x12 image


def seeded(seed: int, module: nn.Module) -> nn.Module:
    """Re-initialise ``module`` from ``seed`` and make it float64 in eval mode."""
    torch.manual_seed(seed)
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return module.double().eval()


def images(n: int = 2, c: int = 2, h: int = 12, w: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- C1: stride-1 convolution is equivariant (exact with circular padding) --------------------------

C1_CONVS = [
    dict(kernel_size=1, padding=0),
    dict(kernel_size=3, padding=1),
    dict(kernel_size=5, padding=2),
    dict(kernel_size=3, padding=2, dilation=2),
]


@pytest.mark.parametrize("kw", C1_CONVS, ids=lambda kw: f"k{kw['kernel_size']}d{kw.get('dilation', 1)}")
def test_c1_circular_stride1_conv_equivariant_to_every_shift(kw):
    conv = seeded(1, nn.Conv2d(2, 3, padding_mode="circular", **kw))
    sl.check_equivariant(conv, (2, 12, 12), shifts=ALL_12, atol=EXACT, rtol=0)
    res = sl.equivariance(nn.Sequential(conv).eval(), images(), shifts=ALL_12)
    (layer,) = res.layers
    assert layer.stride == (1, 1)
    assert layer.aligned_error_max < EXACT
    assert layer.unaligned_error is None  # every integer shift is aligned at stride 1
    assert layer.diagnose() == "equivariant"


# --- C2: downsampling by s is equivariant only to multiples of s ------------------------------------

C2_LAYERS = {
    "strided_conv": lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1, padding_mode="circular"),
    "maxpool": lambda: nn.MaxPool2d(2),
}
EVEN = [(dy, dx) for dy, dx in ALL_12 if dy % 2 == 0 and dx % 2 == 0]
ODD = [(1, 0), (0, 1), (1, 1), (3, 2), (5, 7)]


@pytest.mark.parametrize("name", list(C2_LAYERS))
def test_c2_downsampling_equivariant_to_even_shifts_only(name):
    layer = seeded(2, C2_LAYERS[name]())
    sl.check_equivariant(layer, (2, 12, 12), shifts=EVEN, atol=EXACT, rtol=0)
    res = sl.equivariance(nn.Sequential(layer).eval(), images(), shifts=EVEN + ODD)
    (rec,) = res.layers
    assert rec.stride == (2, 2) and rec.shape == (layer.out_channels if name == "strided_conv" else 2, 6, 6)
    assert rec.aligned_error_max < EXACT
    assert rec.unaligned_error > 0.05
    assert rec.diagnose() == "aliasing"
    with pytest.raises(ValueError, match=r"multiple of the stride \(2, 2\)"):
        sl.check_equivariant(layer, (2, 12, 12), shifts=[(1, 0)])


# --- C3: global pooling is invariant ----------------------------------------------------------------


@pytest.mark.parametrize("pool", [nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)], ids=["gap", "gmp"])
def test_c3_global_pooling_invariant_to_every_circular_shift(pool):
    net = seeded(3, nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, padding_mode="circular"), pool, nn.Flatten()))
    sl.check_invariant(net, (2, 12, 12), shifts=ALL_12, atol=EXACT, rtol=0)


def test_c3_gap_of_zero_padded_conv_not_invariant_under_zeros_shifts():
    net = seeded(3, nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    x = images()
    with torch.no_grad():
        y0 = net(x)
        errs = [float((net(sl.shift(x, dy, dx, mode="zeros")) - y0).abs().max()) for dy, dx in [(1, 0), (0, 2), (-3, 1)]]
    assert min(errs) > 1e-3  # content lost at the border changes the global average
    with pytest.raises(AssertionError, match="not shift invariant"):
        sl.check_invariant(net, (2, 12, 12), mode="zeros")


# --- C4: stacks; zero padding breaks only the border; invariance to multiples of the total stride -----


def test_c4_zero_padding_breaks_equivariance_only_at_the_border():
    conv = seeded(4, nn.Conv2d(2, 3, 3, padding=1))  # zero padding
    res = sl.equivariance(nn.Sequential(conv).eval(), images(), shifts=[(0, 0), (1, 0), (0, 2), (-3, 1), (5, -4)])
    (rec,) = res.layers
    assert rec.aligned_error > 1e-3
    assert rec.aligned_interior_error < EXACT
    assert rec.border == 1
    assert rec.diagnose() == "boundary"


def _stack(pool_kind: str) -> nn.Module:
    if pool_kind == "strided":
        body = [
            nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(),
            nn.Conv2d(4, 6, 3, stride=2, padding=1, padding_mode="circular"), nn.ReLU(),
            nn.Conv2d(6, 8, 3, stride=2, padding=1, padding_mode="circular"),
        ]
    else:
        body = [
            nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 8, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.MaxPool2d(2),
        ]
    return seeded(5, nn.Sequential(*body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)))


def test_c4_circular_stack_invariant_to_multiples_of_total_stride():
    net = _stack("strided")
    multiples_of_4 = [(dy, dx) for dy in range(0, 16, 4) for dx in range(0, 16, 4)]
    sl.check_invariant(net, (1, 16, 16), shifts=multiples_of_4, atol=EXACT, rtol=0)
    with pytest.raises(AssertionError, match=r"worst shift \(dy, dx\) = \(1, 0\)"):
        sl.check_invariant(net, (1, 16, 16), shifts=[(1, 0)], atol=1e-6, rtol=0)
    # the break at (1, 0) is large, not rounding: relative change of the logits > 1e-3
    x = images(4, 1, 16, 16)
    with torch.no_grad():
        y0, y1 = net(x), net(sl.shift(x, 1, 0))
    assert float((y1 - y0).norm() / y0.norm()) > 1e-3
    # the polyphase certificate's premise: every layer aligned-equivariant
    res = sl.equivariance(net, x, shifts=multiples_of_4)
    assert all(layer.aligned_error_max < EXACT for layer in res.layers if layer.aligned_error_max is not None)


def test_c4_maxpool_stack_first_break_is_the_first_downsampling_by_aliasing():
    net = _stack("maxpool")
    res = sl.equivariance(net, images(3, 1, 16, 16), shifts=2)
    assert [layer.name for layer in res.layers][:4] == ["0", "1", "2", "3"]
    first = res.first_break(1e-9)
    assert first is not None and first.name == "2" and first.kind == "MaxPool2d"
    assert first.diagnose(1e-9) == "aliasing"
    assert first.aligned_error_max < EXACT and first.unaligned_error > 0.05
    assert all(layer.worst() < EXACT for layer in res.layers[:2])
