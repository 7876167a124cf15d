"""Tests for ``shiftlab.conversion._trace.atomic``: the one rule by which both of convert's
traces (the downsampling trace of ``_trace`` and the data flow of ``_flow``) take a module as one
call or look inside it. The modules where the two used to disagree (the user's leaf modules, a
shiftlab ``LearnedPool2d``) are entered by both; the layers convert replaces are one call in both."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiftlab.conversion import convert
from shiftlab.conversion._flow import trace_flow
from shiftlab.conversion._trace import atomic, trace
from shiftlab.nn import BlurPool2d, LearnedPool2d


class UserConv(nn.Conv2d):
    """A strided conv of the user's own class (convert replaces it: it does not override forward)."""


class Halve(nn.Module):
    """A leaf module of the user's: ``[N, C, H, W] -> [N, C, H / 2, W / 2]`` by ``F.max_pool2d``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, 2)


class Block(nn.Module):
    """A module of the user's with children: conv, relu, ``[N, C, H, W]`` kept."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(x))


def mixed() -> nn.Sequential:
    """``[1, 3, 32, 32] -> [1, 4, 2, 2]``: every kind of module the rule tells apart."""
    torch.manual_seed(0)
    return nn.Sequential(
        UserConv(3, 4, 3, 2, 1),  # planned: 32 -> 16
        Block(4),
        Halve(),  # 16 -> 8 inside a user leaf
        LearnedPool2d(4),  # 8 -> 4: a shiftlab layer convert does not know, a strided conv2d inside
        BlurPool2d(4),  # 4 -> 2: shiftlab's pooling layer
    )


def test_the_rule() -> None:
    net = mixed()
    modules = dict(net.named_modules())
    assert {path for path, m in modules.items() if atomic(m, path == "0")} == {"0", "1.conv", "1.relu", "4"}
    assert not atomic(modules["0"], False)  # the user's conv class, unless convert replaces it
    assert not atomic(net, False)  # a container


def test_both_traces_enter_the_same_modules() -> None:
    net, x = mixed(), torch.randn(1, 3, 32, 32)
    flow = trace_flow(net, x, planned={"0"})
    found = trace(net, x, "original", planned={"0"}, downsample="blur", analyse=True)
    calls = {c.path for c in flow.calls if c.function is None}
    entered = {c.path for c in flow.calls if c.function is not None}
    assert calls == {"0", "1.conv", "1.relu", "4"} and entered == {"2", "3"}
    # the downsampling trace saw the layers the flow took as one call as layers, and the
    # reductions inside the modules the flow entered as function calls there
    labels = [e.label for e in found.events]
    assert labels == ["0", "max_pool2d() in 2", "conv2d() in 3", "4"]
    assert {u.path for u in found.unconverted} == {"2", "3"}
    assert all(u.kind == "functional" for u in found.unconverted)


def test_convert_blurs_before_a_user_leaf_and_names_the_call_it_makes() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(4, 4, 3, 2, 1), nn.ReLU(), Halve())
    with pytest.warns(UserWarning, match=r"left downsampling as it is .*max_pool2d\(\) in 3"):
        new, report = convert(net, "blur", example_input=torch.randn(1, 3, 32, 32))
    assert [u.path for u in report.unconverted] == ["3"]
    assert [e.blur_at for e in report.entries if e.path == "1"] == ["2.1"]  # after the relu
    assert isinstance(new[2][1], BlurPool2d) and type(new[3]) is Halve
    assert "1: the map after 2 is taken by max_pool2d() in 3" in "\n".join(report.notes)
