"""Max-pooling variants and the strided-conv rewrites (blurred_conv, aps_conv)."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import shiftlab.nn
from shiftlab.nn import (
    APSPool2d,
    BlurPool2d,
    MaxAPSPool2d,
    MaxBlurPool2d,
    aps_conv,
    aps_pool2d,
    blur_pool2d,
    blurred_conv,
)
from shiftlab.nn import aps as aps_module
from shiftlab.nn import blurpool as blurpool_module
from shiftlab.nn import downsample as downsample_module


def all_circular_shift_outputs(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    batch = torch.cat([torch.roll(x, (dy, dx), dims=(-2, -1)) for dy in range(h) for dx in range(w)])
    with torch.no_grad():
        return net(batch)


def test_max_blur_pool_shapes_and_definition() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 28, 28, dtype=torch.float64)
    pool = MaxBlurPool2d(4, kernel_size=2, stride=2).double()
    dense = F.max_pool2d(x, 2, stride=1)
    assert dense.shape[-2:] == (27, 27)
    out = pool(x)
    assert out.shape == (2, 4, 14, 14)
    assert torch.equal(out, blur_pool2d(dense, stride=2, filt_size=4, pad_type="reflect"))
    assert isinstance(pool.blur, BlurPool2d) and pool.pool.stride == 1


@pytest.mark.parametrize(("size", "kernel_size", "stride"), [(16, 2, 2), (28, 2, 2), (15, 3, 2), (18, 3, 3)])
def test_max_blur_pool_output_size(size: int, kernel_size: int, stride: int) -> None:
    out = MaxBlurPool2d(3, kernel_size=kernel_size, stride=stride)(torch.rand(1, 3, size, size))
    side = math.ceil((size - kernel_size + 1) / stride)
    assert out.shape == (1, 3, side, side)


@pytest.mark.parametrize(("size", "kernel_size", "stride"), [(16, 2, 2), (28, 2, 2), (16, 3, 2), (18, 3, 3)])
def test_max_aps_pool_shape_and_definition(size: int, kernel_size: int, stride: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(3, 4, size, size, dtype=torch.float64)
    out = MaxAPSPool2d(4, kernel_size=kernel_size, stride=stride).double()(x)
    assert out.shape == (3, 4, size // stride, size // stride)
    k = kernel_size - 1
    dense = F.max_pool2d(F.pad(x, (0, k, 0, k), mode="circular"), kernel_size, stride=1)
    assert dense.shape == x.shape
    assert torch.equal(out, aps_pool2d(dense, stride=stride))


def max_aps_net(**pool_kwargs: object) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1, padding_mode="circular"),
        nn.ReLU(),
        MaxAPSPool2d(6, **pool_kwargs),
        nn.Conv2d(6, 6, 3, padding=1, padding_mode="circular"),
        nn.ReLU(),
        MaxAPSPool2d(6, **pool_kwargs),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 5),
    ).double()


# norm=inf needs a blur after a max-pool (test_max_aps_inf_norm_without_blur_ties_phases);
# norm=1 with a blur at stride 2 ties every phase (test_aps.py).
MAX_APS_CONFIGS = [
    (norm, filt_size, kernel_size, stride, size)
    for norm, filt_size in [(1, 1), (2, 1), (2, 3), (math.inf, 3), (1, 3)]
    for kernel_size, stride, size in [(2, 2, 16), (3, 2, 16), (2, 3, 18)]
    if not (norm == 1 and filt_size > 1 and stride == 2)
]


@pytest.mark.parametrize(("norm", "filt_size", "kernel_size", "stride", "size"), MAX_APS_CONFIGS)
def test_max_aps_pool_net_exactly_invariant(
    norm: float, filt_size: int, kernel_size: int, stride: int, size: int
) -> None:
    torch.manual_seed(2)
    net = max_aps_net(kernel_size=kernel_size, stride=stride, norm=norm, filt_size=filt_size)
    out = all_circular_shift_outputs(net, torch.randn(1, 2, size, size, dtype=torch.float64))
    assert (out - out[:1]).abs().max().item() < 1e-12


@pytest.mark.parametrize(("kernel_size", "stride"), [(2, 2), (3, 2), (2, 3)])
def test_max_aps_inf_norm_without_blur_ties_phases(kernel_size: int, stride: int) -> None:
    """The dense max-pool copies the maximum into several phases: they tie in the inf-norm."""
    torch.manual_seed(3)
    x = torch.rand(1, 3, 6 * stride, 6 * stride, dtype=torch.float64)
    k = kernel_size - 1
    dense = F.max_pool2d(F.pad(x, (0, k, 0, k), mode="circular"), kernel_size, stride=1)
    norms = [dense[..., i::stride, j::stride].max().item() for i in range(stride) for j in range(stride)]
    assert norms.count(max(norms)) >= 2
    with pytest.warns(UserWarning, match="tie in the inf-norm and shift invariance is lost"):
        MaxAPSPool2d(3, kernel_size=kernel_size, stride=stride, norm=math.inf)


def test_plain_max_pool_net_is_not_invariant() -> None:
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1, padding_mode="circular"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).double()
    out = all_circular_shift_outputs(net, torch.randn(1, 2, 16, 16, dtype=torch.float64))
    assert (out - out[:1]).abs().max().item() > 1e-3


CONVS = [
    dict(in_channels=3, out_channels=5, kernel_size=3, stride=2, padding=1),
    dict(in_channels=3, out_channels=5, kernel_size=3, stride=2, padding=1, padding_mode="circular"),
    dict(in_channels=3, out_channels=5, kernel_size=4, stride=2, padding=1, padding_mode="reflect",
         bias=False),
    dict(in_channels=4, out_channels=6, kernel_size=1, stride=3, groups=2),
    dict(in_channels=3, out_channels=5, kernel_size=3, stride=2, padding=2, dilation=2,
         padding_mode="replicate"),
]


@pytest.mark.parametrize("size", [15, 16])
@pytest.mark.parametrize("spec", CONVS)
def test_blurred_conv_filt1_equals_strided_conv(spec: dict, size: int) -> None:
    torch.manual_seed(3)
    conv = nn.Conv2d(**spec).double()
    layer = blurred_conv(conv, filt_size=1)
    x = torch.randn(2, spec["in_channels"], size, size, dtype=torch.float64)
    expected = conv(x)
    out = layer(x)
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() < 1e-12


@pytest.mark.parametrize("spec", CONVS)
def test_blurred_conv_keeps_weights_and_shape(spec: dict) -> None:
    torch.manual_seed(4)
    conv = nn.Conv2d(**spec).double()
    layer = blurred_conv(conv, filt_size=4, pad_type="zeros")
    dense, pool = layer.conv, layer.pool
    assert torch.equal(dense.weight, conv.weight) and dense.weight is not conv.weight
    assert (dense.bias is None) == (conv.bias is None)
    if conv.bias is not None:
        assert torch.equal(dense.bias, conv.bias)
    assert dense.stride == (1, 1) and conv.stride == (spec["stride"],) * 2  # original untouched
    assert (dense.padding, dense.dilation, dense.groups, dense.padding_mode) == (
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.padding_mode,
    )
    assert isinstance(pool, BlurPool2d) and pool.stride == spec["stride"] and pool.filt_size == 4
    assert pool.filt.dtype == torch.float64
    x = torch.randn(1, spec["in_channels"], 13, 13, dtype=torch.float64)
    assert layer(x).shape == conv(x).shape


@pytest.mark.parametrize("circular", [False, True])
def test_aps_conv_keeps_weights_and_selects_a_phase(circular: bool) -> None:
    torch.manual_seed(5)
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1).double()
    layer = aps_conv(conv, norm=2, filt_size=1, circular=circular)
    assert torch.equal(layer.conv.weight, conv.weight) and torch.equal(layer.conv.bias, conv.bias)
    assert layer.conv.padding_mode == ("circular" if circular else "zeros")
    assert conv.padding_mode == "zeros" and conv.stride == (2, 2)
    assert isinstance(layer.pool, APSPool2d) and layer.pool.stride == 2
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    mode = "circular" if circular else "constant"
    dense = F.conv2d(F.pad(x, (1, 1, 1, 1), mode=mode), conv.weight, conv.bias)
    assert torch.equal(layer(x), aps_pool2d(dense, stride=2))
    assert layer(x).shape == conv(x).shape


def test_aps_conv_makes_strided_conv_net_exactly_invariant() -> None:
    torch.manual_seed(6)
    strided = nn.Sequential(
        nn.Conv2d(2, 6, 3, stride=2, padding=1, padding_mode="circular"),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).double()
    x = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    out = all_circular_shift_outputs(strided, x)
    assert (out - out[:1]).abs().max().item() > 1e-3
    converted = nn.Sequential(
        aps_conv(strided[0], norm=2, filt_size=3, circular=True),
        nn.ReLU(),
        aps_conv(strided[2], norm="inf", circular=True),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    out = all_circular_shift_outputs(converted, x)
    assert (out - out[:1]).abs().max().item() < 1e-12


@pytest.mark.parametrize("make", [blurred_conv, aps_conv])
def test_conv_rewrite_errors(make) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="conv already has stride 1"):
        make(nn.Conv2d(3, 3, 3))
    with pytest.raises(ValueError, match=r"only square strides are supported, got stride=\(2, 1\)"):
        make(nn.Conv2d(3, 3, 3, stride=(2, 1)))
    with pytest.raises(TypeError, match="expected an nn.Conv2d, got Linear"):
        make(nn.Linear(3, 3))


def test_pool_variant_errors() -> None:
    with pytest.raises(ValueError, match="kernel_size must be >= 1, got 0"):
        MaxBlurPool2d(3, kernel_size=0)
    with pytest.raises(TypeError, match="kernel_size must be an int"):
        MaxAPSPool2d(3, kernel_size=(2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stride must be >= 2, got 1"):
        MaxAPSPool2d(3, stride=1)
    with pytest.raises(ValueError, match="input has 2 channels but the layer was built for channels=3"):
        MaxAPSPool2d(3)(torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="expected a 4-D input"):
        MaxBlurPool2d(3)(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="divisible by stride=2, got 9x8"):
        MaxAPSPool2d(3)(torch.rand(1, 3, 9, 8))


def test_public_api_exported() -> None:
    for name in shiftlab.nn.__all__:
        assert getattr(shiftlab.nn, name).__doc__
    assert {"BlurPool2d", "APSPool2d", "MaxBlurPool2d", "MaxAPSPool2d", "blurred_conv", "aps_conv"} <= set(
        shiftlab.nn.__all__
    )


@pytest.mark.parametrize("module", [blurpool_module, aps_module, downsample_module])
def test_docstring_examples_run(module) -> None:  # noqa: ANN001
    result = doctest.testmod(module, raise_on_error=False, verbose=False)
    assert result.attempted > 0 and result.failed == 0
