"""The fast stride-1 max (``shiftlab.nn.MaxPool2d``, ``dense_max2d``): equal bit for bit to
``nn.MaxPool2d`` wherever it is taken, never taken where a gradient is needed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.nn import MaxAPSPool2d, MaxBlurPool2d, MaxPool2d, dense_max2d


def _awkward(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """ReLU'd noise (many tied zeros), rounded (more ties), with a NaN, +inf and -inf in it."""
    g = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(shape, generator=g, dtype=dtype)).mul(4).round()
    flat = x.view(-1)
    flat[3], flat[7], flat[-2] = float("nan"), float("inf"), float("-inf")
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(3, 5, 9, 9), (2, 4, 7, 12), (4, 6, 5), (1, 1, 4, 4)])
def test_dense_max_equals_max_pool_bit_for_bit(shape, k, dtype):
    x = _awkward(shape, dtype)
    expected = F.max_pool2d(x, k, stride=1)
    assert torch.equal(dense_max2d(x, k).isnan(), expected.isnan())
    assert torch.equal(dense_max2d(x, k).nan_to_num(), expected.nan_to_num())
    with torch.no_grad():
        got = MaxPool2d(k, stride=1)(x)
    assert got.dtype == dtype and torch.equal(got.nan_to_num(), expected.nan_to_num())
    with torch.inference_mode():
        assert torch.equal(MaxPool2d(k, stride=1)(x).nan_to_num(), expected.nan_to_num())


def test_a_window_larger_than_the_input_is_refused():
    with pytest.raises(ValueError, match="smaller than the 3x3 window"):
        dense_max2d(torch.zeros(1, 1, 2, 5), 3)
    with pytest.raises(RuntimeError):  # MaxPool2d leaves it to nn.MaxPool2d, which raises its own error
        with torch.no_grad():
            MaxPool2d(3, stride=1)(torch.zeros(1, 1, 2, 5))


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=2, stride=1, dilation=2), dict(kernel_size=3, stride=1, padding=1),
                                    dict(kernel_size=2, stride=1, ceil_mode=True), dict(kernel_size=(2, 3), stride=1)])
def test_every_other_pool_is_nn_max_pool(kwargs):
    x = _awkward((2, 3, 9, 10), torch.float32).nan_to_num(0.0, 5.0, -5.0)
    with torch.no_grad():
        assert torch.equal(MaxPool2d(**kwargs)(x), nn.MaxPool2d(**kwargs)(x))
    indices = MaxPool2d(2, stride=1, return_indices=True)
    with torch.no_grad():
        out, idx = indices(x)
    ref_out, ref_idx = nn.MaxPool2d(2, stride=1, return_indices=True)(x)
    assert torch.equal(out, ref_out) and torch.equal(idx, ref_idx)


def test_training_takes_max_pools_gradient_which_the_separable_max_would_not_give():
    x = torch.zeros(1, 1, 3, 3, requires_grad=True)  # all tied: max_pool2d sends each window's gradient to one input
    MaxPool2d(2, stride=1)(x).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    nn.MaxPool2d(2, stride=1)(x).sum().backward()
    assert torch.equal(ours, x.grad)
    x.grad = None
    dense_max2d(x, 2).sum().backward()
    assert not torch.equal(ours, x.grad)  # so the fast path must not be the training path


def test_it_is_an_nn_max_pool_by_name_type_and_state():
    pool = MaxPool2d(2, stride=1)
    assert isinstance(pool, nn.MaxPool2d) and type(pool).__name__ == "MaxPool2d"
    assert repr(pool) == repr(nn.MaxPool2d(2, stride=1)) and pool.state_dict() == {}


@pytest.mark.parametrize("layer", [MaxBlurPool2d(5, kernel_size=2, stride=2), MaxAPSPool2d(5, kernel_size=2, stride=2)])
def test_the_max_blur_and_max_aps_layers_are_unchanged(layer):
    """Swapping their dense max back to nn.MaxPool2d gives the same output bit for bit."""
    x = _awkward((3, 5, 12, 12), torch.float32).nan_to_num(0.0, 7.0, -7.0)
    assert type(layer.pool) is MaxPool2d
    with torch.no_grad():
        fast = layer(x)
        layer.pool = nn.MaxPool2d(2, stride=1)
        assert torch.equal(fast, layer(x))
