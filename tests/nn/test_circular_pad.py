"""Circular padding with a direct backward (``shiftlab.nn.circular_pad2d``, ``Conv2d``,
``CircularPad2d``): the values and gradients of ``F.pad(mode="circular")`` bit for bit, so training
a zoo model is unchanged; exporters still see ``F.pad``."""

from __future__ import annotations

import copy
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.nn import CircularPad2d, Conv2d, circular_pad2d
from shiftlab.nn import circular_pad as circular_pad_module
from shiftlab.zoo import build

PADS = [(1, 1, 1, 1), (0, 1, 0, 1), (2, 1, 3, 0), (1, 0, 0, 2), (0, 0, 1, 1), (4, 4, 5, 5), (3, 0, 0, 0)]


def _pad_and_grad(fn, x: torch.Tensor, upstream_seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    leaf = x.detach().clone().requires_grad_(True)
    out = fn(leaf)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(upstream_seed), dtype=out.dtype)
    out.backward(g.contiguous(memory_format=torch.channels_last) if out.dim() == 4 else g)
    return out.detach(), leaf.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("pad", PADS)
def test_values_and_gradient_equal_f_pad_bit_for_bit(pad, channels_last, dtype):
    x = torch.randn(3, 4, 5, 6, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours, our_grad = _pad_and_grad(lambda t: circular_pad2d(t, pad), x)
    ref, ref_grad = _pad_and_grad(lambda t: F.pad(t, pad, mode="circular"), x)
    assert torch.equal(ours, ref)
    assert torch.equal(our_grad, ref_grad)
    assert our_grad.shape == x.shape


def test_gradient_on_unbatched_input_and_gradcheck_in_float64():
    x = torch.randn(2, 4, 5, dtype=torch.float64)
    ours, our_grad = _pad_and_grad(lambda t: circular_pad2d(t, (2, 1, 1, 3)), x)
    ref, ref_grad = _pad_and_grad(lambda t: F.pad(t, (2, 1, 1, 3), mode="circular"), x)
    assert torch.equal(ours, ref) and torch.equal(our_grad, ref_grad)
    leaf = torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: circular_pad2d(t, (1, 2, 3, 1)), (leaf,))


def test_every_padded_pixel_sends_its_gradient_to_the_pixel_it_copies():
    """An independent check: with upstream gradient 1 everywhere, a pixel's gradient counts its copies."""
    x = torch.zeros(1, 1, 3, 4, requires_grad=True)
    circular_pad2d(x, (1, 2, 1, 0)).sum().backward()
    # W = 4: the left pad copies column 3, the right pad columns 0 and 1
    copies_w = torch.tensor([2.0, 2.0, 1.0, 2.0])
    copies_h = torch.tensor([1.0, 1.0, 2.0])  # top pad copies row 2
    assert torch.equal(x.grad[0, 0], torch.outer(copies_h, copies_w))


@pytest.mark.parametrize(("padding", "stride"), [(1, 1), (1, 2), (2, 1), (2, 2), ((1, 2), 1), ((1, 2), 2), ("same", 1)])
def test_conv2d_is_nn_conv2d_with_the_same_state_outputs_and_gradients(padding, stride):
    torch.manual_seed(0)
    ref = nn.Conv2d(3, 5, 3, stride=stride, padding=padding, padding_mode="circular")
    ours = Conv2d(3, 5, 3, stride=stride, padding=padding, padding_mode="circular")
    ours.load_state_dict(ref.state_dict())
    assert isinstance(ours, nn.Conv2d)
    x = torch.randn(2, 3, 8, 9)
    a, ga = _pad_and_grad(ours, x)
    b, gb = _pad_and_grad(ref, x)
    assert torch.equal(a, b) and torch.equal(ga, gb)
    ours.zero_grad()
    ref.zero_grad()
    ours(x).square().sum().backward()
    ref(x).square().sum().backward()
    assert torch.equal(ours.weight.grad, ref.weight.grad) and torch.equal(ours.bias.grad, ref.bias.grad)


def test_conv2d_other_padding_modes_are_nn_conv2d():
    torch.manual_seed(0)
    for mode in ("zeros", "reflect", "replicate"):
        ref = nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
        ours = Conv2d(2, 3, 3, padding=1, padding_mode=mode)
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(1, 2, 6, 6)
        assert torch.equal(ours(x), ref(x))


def test_circular_pad_module_matches_nn_circular_pad():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    a, ga = _pad_and_grad(CircularPad2d((0, 1, 2, 1)), x)
    b, gb = _pad_and_grad(nn.CircularPad2d((0, 1, 2, 1)), x)
    assert isinstance(CircularPad2d(1), nn.CircularPad2d)
    assert torch.equal(a, b) and torch.equal(ga, gb)


@pytest.mark.parametrize(("name", "padding"), [("strided_gap", "circular"), ("maxpool_fc", "circular"),
                                               ("blurstrided_gap", "circular"), ("maxblur_gmp", "circular"),
                                               ("aps_gap", "zeros")])
def test_training_a_zoo_model_is_unchanged_bit_for_bit(name, padding):
    """Five Adam steps with the direct backward in channels-last and with plain ``F.pad`` (the fast
    path switched off: autograd's backward, contiguous output) leave every parameter and BatchNorm
    statistic equal. (Not asserted for APS with circular convolutions: its phase argmax may flip on
    a rounding tie, ``shiftlab.nn.circular_pad``.)"""
    model = build(name, num_classes=10, in_channels=1, width=4, input_size=(16, 16), padding_mode=padding,
                  seed=0).to(memory_format=torch.channels_last)
    reference = copy.deepcopy(model)
    x = torch.randn(8, 1, 16, 16).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(0))

    def train(m: nn.Module) -> None:
        opt = torch.optim.Adam(m.parameters(), lr=0.01)
        for _ in range(5):
            opt.zero_grad()
            F.cross_entropy(m(x), y).backward()
            opt.step()

    with mock.patch.object(circular_pad_module, "_CircularPad2dFunction", wraps=circular_pad_module._CircularPad2dFunction) as fn:
        train(model)
    assert fn.apply.call_count > 0  # the direct backward ran
    with mock.patch.object(circular_pad_module, "_traced", return_value=True):
        train(reference)  # F.pad and autograd's own backward
    for (key, a), b in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    assert not torch.equal(model.state_dict()["features.0.weight"], build(name, num_classes=10, in_channels=1, width=4,
                           input_size=(16, 16), padding_mode=padding, seed=0).state_dict()["features.0.weight"])


@pytest.mark.parametrize("grad", [True, False])
def test_a_channels_last_input_stays_channels_last(grad):
    x = torch.randn(2, 3, 5, 6).contiguous(memory_format=torch.channels_last).requires_grad_(grad)
    out = circular_pad2d(x, (1, 2, 0, 1))
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert torch.equal(out, F.pad(x, (1, 2, 0, 1), mode="circular"))
    assert circular_pad2d(x.detach().contiguous(), (1, 1, 1, 1)).is_contiguous()


def test_exporters_and_no_grad_see_plain_f_pad():
    conv = Conv2d(1, 2, 3, padding=1, padding_mode="circular")
    x = torch.randn(1, 1, 5, 5)
    exported = torch.export.export(conv, (x,))
    targets = [node.target for node in exported.graph.nodes if node.op == "call_function"]
    assert torch.ops.aten.pad.default in targets
    assert torch.equal(exported.module()(x), conv(x))
    with torch.no_grad():
        assert circular_pad2d(x.requires_grad_(), (1, 1, 1, 1)).grad_fn is None


def test_bad_pads():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="left, right, top, bottom"):
        circular_pad2d(x, (1, 1))
    assert torch.equal(circular_pad2d(x.requires_grad_(), (-1, 0, 0, -1)), F.pad(x, (-1, 0, 0, -1), mode="circular"))
    with pytest.raises(RuntimeError, match="wrapping around"):  # F.pad's own message: a pad wider than the input
        circular_pad2d(x, (5, 5, 0, 0))
