"""APS layers that share one phase choice (``APSPool2d.follow``): exact shift consistency with the
leader's phase, a residual block made exactly invariant, and the errors that keep a choice from
being used out of order or in another forward pass."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from shiftlab.nn import APSPool2d, aps_pool2d


def pair(stride: int = 2, leader_channels: int = 3, follower_channels: int = 5) -> tuple[APSPool2d, APSPool2d]:
    leader = APSPool2d(leader_channels, stride=stride, return_indices=True)
    return leader, APSPool2d(follower_channels, stride=stride).follow(leader, name="lead")


def roll(x: Tensor, d: tuple[int, int]) -> Tensor:
    return torch.roll(x, d, dims=(-2, -1))


@pytest.mark.parametrize("stride", [2, 3])
def test_follower_output_shifts_with_the_leaders_phase(stride: int) -> None:
    """For every circular shift ``d`` of both inputs, the follower keeps the leader's component
    ``(p + d) mod s`` and its output is its unshifted output moved by ``floor((p + d) / s)``."""
    leader, follower = pair(stride)
    gen = torch.Generator().manual_seed(0)
    size = 4 * stride
    x = torch.randn(2, 3, size, size, dtype=torch.float64, generator=gen)
    y = torch.randn(2, 5, size, size, dtype=torch.float64, generator=gen)
    (_, p), out = leader(x), follower(y)
    assert torch.equal(out, aps_pool2d(y, stride=stride, indices=p))
    for dy in range(size):
        for dx in range(size):
            (_, q), moved = leader(roll(x, (dy, dx))), follower(roll(y, (dy, dx)))
            py, px = p // stride, p % stride
            assert torch.equal(q, (py + dy) % stride * stride + (px + dx) % stride)
            for b in range(2):
                shift = (int(py[b] + dy) // stride, int(px[b] + dx) // stride)
                assert torch.equal(moved[b], roll(out[b], shift))


class Block(nn.Module):
    """``relu(conv2(APS(relu(conv1(x)))) + APS(skip(x)))`` then a global average pool: a residual
    block that downsamples on both branches (circular padding), ``[N, 2, H, W] -> [N, 6]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1, padding_mode="circular")
        self.pool1 = APSPool2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1, padding_mode="circular")
        self.skip = nn.Conv2d(2, 6, 1)
        self.pool2 = APSPool2d(6)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(torch.relu(self.pool1(torch.relu(self.conv1(x)))))
        return torch.relu(out + self.pool2(self.skip(x))).mean((2, 3))


def every_shift_error(model: nn.Module, size: int = 8) -> float:
    """Max ``|f(T_d x) - f(x)|`` over all ``size * size`` circular shifts of one random image."""
    x = torch.randn(1, 2, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    batch = torch.cat([roll(x, (dy, dx)) for dy in range(size) for dx in range(size)])
    with torch.no_grad():
        out = model(batch)
    return float((out - out[:1]).abs().max())


def test_shared_phase_makes_a_residual_block_exactly_invariant() -> None:
    torch.manual_seed(0)
    block = Block().double()
    assert every_shift_error(block) > 1e-3  # each branch chooses its own phase
    block.pool2.follow(block.pool1, name="pool1")
    assert every_shift_error(block) < 1e-12


def test_train_mode_gradients_and_no_grad() -> None:
    torch.manual_seed(0)
    block = Block().double().train()
    block.pool2.follow(block.pool1)
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    block(x).sum().backward()
    assert x.grad is not None and block.skip.weight.grad is not None
    with torch.no_grad():
        assert torch.equal(block(x), block.eval()(x))


def test_a_follower_without_a_fresh_choice_raises() -> None:
    leader, follower = pair()
    x = torch.randn(2, 5, 8, 8)
    with pytest.raises(RuntimeError, match="follows lead, which has not chosen a phase since"):
        follower(x)  # the leader has not run
    leader(torch.randn(2, 3, 8, 8))
    follower(x)
    with pytest.raises(RuntimeError, match="leader must run before its followers"):
        follower(x)  # a second call: the choice was for the first one
    leader(torch.randn(2, 3, 8, 8))
    follower(x)  # a new forward pass: fresh again


@pytest.mark.parametrize("shape", [(3, 5, 8, 8), (2, 5, 8, 10), (2, 5, 4, 4)])
def test_a_choice_made_on_another_shape_is_refused(shape: tuple[int, ...]) -> None:
    leader, follower = pair()
    leader(torch.randn(2, 3, 8, 8))
    with pytest.raises(RuntimeError, match=r"\(N, H, W\) = \(2, 8, 8\), but this layer's input has"):
        follower(torch.randn(shape))


def test_follow_checks_its_leader() -> None:
    a, b = APSPool2d(3), APSPool2d(3)
    with pytest.raises(ValueError, match="leader has stride=3, this layer stride=2"):
        a.follow(APSPool2d(3, stride=3))
    with pytest.raises(TypeError, match="leader must be an APSPool2d, got Conv2d"):
        a.follow(nn.Conv2d(3, 3, 1))  # type: ignore[arg-type]
    b.follow(a)
    with pytest.raises(ValueError, match="cycle"):
        a.follow(b)
    with pytest.raises(ValueError, match="cycle"):
        a.follow(a)
    assert b.follow(None).leader is None


def test_a_chain_of_followers_keeps_the_first_choice() -> None:
    first, second = pair(follower_channels=3)
    third = APSPool2d(4).follow(second)
    x, y = torch.randn(2, 3, 8, 8), torch.randn(2, 4, 8, 8)
    (_, p), _, out = first(x), second(x), third(y)
    assert torch.equal(out, aps_pool2d(y, indices=p))


def test_deep_copy_and_state_dict() -> None:
    torch.manual_seed(0)
    block = Block().double()
    keys = list(block.state_dict())
    block.pool2.follow(block.pool1, name="pool1")
    assert list(block.state_dict()) == keys  # the link is no submodule, no state
    assert [name for name, _ in block.named_children()] == ["conv1", "pool1", "conv2", "skip", "pool2"]
    assert [name for name, _ in block.pool2.named_children()] == ["blur"]
    assert "follows=pool1" in repr(block.pool2)
    twin = copy.deepcopy(block)
    assert twin.pool2.leader is twin.pool1 and block.pool2.leader is block.pool1
    twin.load_state_dict(block.state_dict())
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(twin(x), block(x))
    lone = copy.deepcopy(block.pool2)  # copied without its leader: the leader's copy never runs
    block(x)
    with pytest.raises(RuntimeError, match="has not chosen a phase"):
        lone(torch.randn(2, 6, 8, 8, dtype=torch.float64))


def test_functional_indices_are_checked() -> None:
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"torch.long tensor of shape \(2,\), got torch.int32"):
        aps_pool2d(x, indices=torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"shape \(2,\), got list"):
        aps_pool2d(x, indices=[0, 1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"lie in \[0, 4\) for stride=2"):
        aps_pool2d(x, indices=torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"lie in \[0, 4\)"):
        aps_pool2d(x, indices=torch.tensor([-1, 0]))
    out, idx = aps_pool2d(x, indices=torch.tensor([3, 0]), return_indices=True)
    assert torch.equal(out[0], x[0, :, 1::2, 1::2]) and torch.equal(out[1], x[1, :, ::2, ::2])
    assert idx.tolist() == [3, 0]
