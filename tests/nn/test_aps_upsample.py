"""APS-U (shiftlab.nn.APSUpsample2d / aps_upsample2d): the inverse of keeping a component; paired
with its APS downsampling, exactly equivariant to every circular shift (float64), alone and inside
a U-Net; with the phase not shared (plain zero insertion), clearly not; the follower's rules."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from shiftlab.nn import APSPool2d, APSUpsample2d, Conv2d, aps_pool2d, aps_upsample2d


def all_shifts(h: int, w: int) -> list[tuple[int, int]]:
    return [(dy, dx) for dy in range(h) for dx in range(w)]


def roll(x: Tensor, d: tuple[int, int]) -> Tensor:
    return torch.roll(x, d, dims=(2, 3))


def worst_equivariance_error(f: nn.Module, x: Tensor) -> float:
    """max over every circular shift d of |f(T_d x) - T_d f(x)| / max |f(x)|."""
    with torch.no_grad():
        y = f(x)
        return max(float((f(roll(x, d)) - roll(y, d)).abs().max()) for d in all_shifts(*x.shape[-2:])) / float(
            y.abs().max())


def test_upsampling_at_the_kept_component_inverts_keeping_it():
    x = torch.randn(3, 2, 8, 6, dtype=torch.float64)
    low, idx = aps_pool2d(x, stride=2, return_indices=True)
    up = aps_upsample2d(low, idx, stride=2)
    assert up.shape == x.shape
    assert torch.equal(aps_pool2d(up, indices=idx), low)
    for b in range(3):  # every other component is zero
        i, j = divmod(int(idx[b]), 2)
        mask = torch.zeros(8, 6, dtype=torch.bool)
        mask[i::2, j::2] = True
        assert torch.equal(up[b][:, mask], x[b][:, mask]) and not up[b][:, ~mask].any()


@pytest.mark.parametrize("stride", [2, 3])
@pytest.mark.parametrize("filt_size", [1, 3, 4])
def test_the_pair_is_exactly_equivariant_to_every_circular_shift(stride, filt_size):
    torch.manual_seed(0)
    down = APSPool2d(3, stride=stride, filt_size=filt_size)
    up = APSUpsample2d(3, stride=stride, filt_size=filt_size).follow(down)
    pair = nn.Sequential(down, up).double()
    x = torch.randn(2, 3, 4 * stride, 2 * stride, dtype=torch.float64)
    assert worst_equivariance_error(pair, x) < 1e-13


def test_plain_zero_insertion_after_aps_is_not_equivariant():
    down = APSPool2d(3, stride=2)

    class FixedPhase(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return aps_upsample2d(x, torch.zeros(x.shape[0], dtype=torch.long))

    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    assert worst_equivariance_error(nn.Sequential(down, FixedPhase()), x) > 0.5


def test_a_constant_map_upsamples_to_itself_through_the_blur():
    x = torch.full((1, 2, 4, 4), 0.7, dtype=torch.float64)
    out = aps_upsample2d(x, torch.tensor([3]), stride=2, filt_size=3)
    assert torch.allclose(out, torch.full((1, 2, 8, 8), 0.7, dtype=torch.float64), atol=1e-15)


def test_gradients_reach_the_input():
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([1, 2])
    assert torch.autograd.gradcheck(lambda t: aps_upsample2d(t, idx, stride=2, filt_size=3), (x,))


class TinyUNet(nn.Module):
    """Two levels, circular convolutions, APS down, APS-U (or fixed-phase zero insertion) up, skip
    concatenations, a 1x1 head: a dense output ``[N, classes, H, W]``."""

    def __init__(self, shared: bool = True, width: int = 4, classes: int = 3) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(Conv2d(cin, cout, 3, padding=1, padding_mode="circular"), nn.ReLU())

        self.enc0, self.enc1, self.mid = conv(1, width), conv(width, 2 * width), conv(2 * width, 2 * width)
        self.down0, self.down1 = APSPool2d(width, stride=2), APSPool2d(2 * width, stride=2)
        self.up1 = APSUpsample2d(2 * width, stride=2, filt_size=3).follow(self.down1, "down1")
        self.up0 = APSUpsample2d(2 * width, stride=2, filt_size=3).follow(self.down0, "down0")
        self.dec1, self.dec0 = conv(4 * width, 2 * width), conv(2 * width + width, width)
        self.head = nn.Conv2d(width, classes, 1)
        self.shared = shared

    def _up(self, layer: APSUpsample2d, x: Tensor) -> Tensor:
        if self.shared:
            return layer(x)
        return aps_upsample2d(x, torch.zeros(x.shape[0], dtype=torch.long), 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        s0 = self.enc0(x)  # [N, w, H, W]
        s1 = self.enc1(self.down0(s0))  # [N, 2w, H/2, W/2]
        m = self.mid(self.down1(s1))  # [N, 2w, H/4, W/4]
        d1 = self.dec1(torch.cat([self._up(self.up1, m), s1], dim=1))
        d0 = self.dec0(torch.cat([self._up(self.up0, d1), s0], dim=1))
        return self.head(d0)


def test_a_unet_with_aps_down_and_aps_up_is_exactly_equivariant_to_every_circular_shift():
    torch.manual_seed(1)
    net = TinyUNet().double().eval()
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    assert worst_equivariance_error(net, x) < 1e-12


def test_the_same_unet_with_unshared_phases_is_not():
    torch.manual_seed(1)
    net = TinyUNet(shared=False).double().eval()
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    assert worst_equivariance_error(net, x) > 1e-2  # ten orders above the shared net's (the skips stay exact)


def test_follower_rules():
    down = APSPool2d(2, stride=2)
    with pytest.raises(RuntimeError, match="has no leader"):
        APSUpsample2d(2)(torch.rand(1, 2, 4, 4))
    with pytest.raises(TypeError, match="must be an APSPool2d"):
        APSUpsample2d(2).follow(nn.MaxPool2d(2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stride=3"):
        APSUpsample2d(2, stride=2).follow(APSPool2d(2, stride=3))
    up = APSUpsample2d(2).follow(down, name="enc.down")
    with pytest.raises(RuntimeError, match="follows enc.down, which has not chosen a phase"):
        up(torch.rand(1, 2, 4, 4))
    low = down(torch.rand(1, 2, 8, 8))
    assert up(low).shape == (1, 2, 8, 8)
    with pytest.raises(RuntimeError, match="has not chosen a phase since"):  # one choice serves once
        up(low)
    down(torch.rand(1, 2, 8, 8))
    with pytest.raises(RuntimeError, match=r"output has \(1, 12, 12\)"):
        up(torch.rand(1, 2, 6, 6))
    assert "follows=enc.down" in repr(up)


def test_bad_indices_are_refused():
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\)"):
        aps_upsample2d(torch.rand(1, 1, 2, 2), torch.tensor([4]))
    with pytest.raises(ValueError, match="torch.long tensor of shape"):
        aps_upsample2d(torch.rand(2, 1, 2, 2), torch.tensor([0]))
