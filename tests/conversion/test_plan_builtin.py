"""Tests for ``shiftlab.conversion._plan.builtin``: which layer classes convert takes for torch's
own. shiftlab's circular ``Conv2d`` / ``CircularPad2d`` count as the torch layers they equal, a
subclass the user wrote does not, and both of its call sites (the traces' atomic modules, the
norms and activations of ``placement="zhang"``) read it the same way."""

from __future__ import annotations

import torch
from torch import nn

from shiftlab.conversion._flow import Call, trace_flow
from shiftlab.conversion._plan import builtin
from shiftlab.conversion._trace import atomic
from shiftlab.conversion._zhang import _pointwise, place
from shiftlab.nn import BlurPool2d, circular_pad


class UserConv(nn.Conv2d):
    """A subclass the user wrote (it computes what ``nn.Conv2d`` does, but convert cannot know)."""


class UserReLU(nn.ReLU):
    """A subclass the user wrote of a pointwise layer."""


def x() -> torch.Tensor:
    """A batch ``[1, 3, 8, 8]``."""
    return torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_shiftlabs_circular_layers_are_builtin_and_user_subclasses_are_not() -> None:
    assert builtin(nn.Conv2d) and builtin(nn.ReLU) and builtin(nn.CircularPad2d) and builtin(nn.Sequential)
    assert builtin(circular_pad.Conv2d) and builtin(circular_pad.CircularPad2d)
    assert not builtin(UserConv) and not builtin(UserReLU)
    assert not builtin(BlurPool2d)  # shiftlab's own layer: not a torch.nn one


def test_both_call_sites_read_it_alike() -> None:
    # the traces' atomic modules
    assert atomic(circular_pad.Conv2d(3, 4, 3, padding=1, padding_mode="circular"), False)
    assert atomic(nn.Conv2d(3, 4, 3), False) and not atomic(UserConv(3, 4, 3), False)
    # placement="zhang"'s norms and activations
    def pointwise(t: type[nn.Module]) -> bool:
        return _pointwise(Call("m", None, (0,), t))

    assert pointwise(nn.ReLU) and not pointwise(UserReLU)
    assert not pointwise(circular_pad.Conv2d) and not pointwise(nn.Conv2d)


def test_the_flow_takes_a_shiftlab_circular_conv_as_one_call_and_enters_a_user_subclass() -> None:
    net = nn.Sequential(circular_pad.Conv2d(3, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(),
                        UserConv(4, 4, 3, padding=1))
    flow = trace_flow(net, x(), planned=set())
    # the circular conv's padding slices are its own business; the user's conv is looked into
    assert [(c.path, c.function) for c in flow.calls] == [("0", None), ("1", None), ("2", "conv2d")]
    assert flow.calls[0].module_type is circular_pad.Conv2d


def test_a_user_subclass_of_an_activation_ends_the_zhang_chain() -> None:
    def placement(act: nn.Module, conv: nn.Module) -> tuple[str | None, tuple[str, ...]]:
        net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.BatchNorm2d(4), act, conv)
        p = place("0", trace_flow(net, x(), planned={"0"}), [])
        return p.host, p.chain

    conv = nn.Conv2d(4, 4, 3, padding=1)
    assert placement(nn.ReLU(), conv) == ("2", ("1", "2"))
    assert placement(UserReLU(), conv) == ("1", ("1",))  # the blur goes before the user's layer
    # what follows the chain does not matter: a shiftlab circular conv is a conv like nn.Conv2d
    assert placement(nn.ReLU(), circular_pad.Conv2d(4, 4, 3, padding=1, padding_mode="circular")) == ("2", ("1", "2"))
