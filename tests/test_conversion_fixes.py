"""Real architectures through :func:`shiftlab.conversion.convert` (issue 22, item 4).

- A channels-last stretch in a forward (ConvNeXt's ``LayerNorm2d`` and block: ``permute(0, 2, 3, 1)``,
  LayerNorm and Linear over C, ``permute`` back) is no downsampling: the trace follows ``H, W``
  through the reordering (it took the NHWC map's ``(H, C)`` for ``(H, W)``); a reduction of a
  reordered map is still found.
- ConvNeXt's unpadded ``k = s`` convs convert under ``aps`` with circular padding (a circular pad of
  ``d (k - 1) - p`` after the map), and the converted ConvNeXt-style network is exactly invariant to
  every circular shift in float64.
- ``AvgPool2d(2, 2, ceil_mode=True)`` (ResNet-D's shortcut) converts where its output size is the
  one without ``ceil_mode`` at the traced input, and is refused where it is not.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor, nn

from shiftlab.conversion import convert

pytestmark = pytest.mark.usefixtures("one_thread")


class LayerNorm2d(nn.LayerNorm):
    """ConvNeXt's (timm's) LayerNorm over the channels of an ``[N, C, H, W]`` map."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Block(nn.Module):
    """A ConvNeXt block: depthwise 7x7, channels-last LayerNorm, Linear, GELU, Linear, residual."""

    def __init__(self, c: int, reorder: str = "permute") -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)
        self.reorder = reorder

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x)
        y = y.permute(0, 2, 3, 1) if self.reorder == "permute" else y.movedim(1, -1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (y.permute(0, 3, 1, 2) if self.reorder == "permute" else y.transpose(1, 3).transpose(2, 3))


def convnext_like(c: int = 8) -> nn.Module:
    """Patchify stem (4x4, stride 4), a block, ConvNeXt's downsampling layer (LayerNorm2d, 2x2 conv
    at stride 2), a block, global average pool, head: total stride 8."""
    return nn.Sequential(
        nn.Conv2d(3, c, 4, stride=4), LayerNorm2d(c), Block(c),
        nn.Sequential(LayerNorm2d(c), nn.Conv2d(c, 2 * c, 2, stride=2)), Block(2 * c, reorder="movedim"),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * c, 5))


def all_circular_shifts(model: nn.Module, x: Tensor) -> Tensor:
    """Max |f(roll(x, d)) - f(x)| over every circular shift ``d`` of the single image ``x``."""
    h, w = x.shape[-2:]
    batch = torch.cat([torch.roll(x, (dy, dx), (-2, -1)) for dy in range(h) for dx in range(w)])
    with torch.no_grad():
        return (model(batch) - model(x)).abs().max()


def quiet_convert(*args, **kwargs):
    """``convert`` with every warning turned into an error (no false report may warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return convert(*args, **kwargs)


@pytest.mark.parametrize("downsample", ["aps", "blur"])
def test_channels_last_permutes_are_not_downsampling(downsample):
    torch.manual_seed(0)
    new, report = quiet_convert(convnext_like(), downsample, padding="circular")
    assert report.unconverted == []
    assert "3.1" in report.paths  # the downsampling conv (Zhang's blur keeps the stem strided)


def test_a_reduction_of_a_reordered_map_is_still_found():
    class StridedChannelsLast(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x.permute(0, 2, 3, 1)[:, ::2, ::2, :].permute(0, 3, 1, 2)

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), StridedChannelsLast(), nn.AdaptiveAvgPool2d(1))
    with pytest.warns(UserWarning, match="convert left downsampling"):
        _, report = convert(model, "aps", padding="circular")
    [found] = report.unconverted
    assert (found.path, found.op, found.in_size, found.out_size) == ("1", "__getitem__", (32, 32), (16, 16))


def test_convnext_like_network_is_exactly_invariant_after_aps_with_circular_padding():
    torch.manual_seed(0)
    model = convnext_like().double().eval()
    new, report = quiet_convert(model, "aps", padding="circular")
    assert report.unconverted == [] and report.merges == []
    assert report.invariance_check is not None and report.invariance_check < 1e-12
    assert isinstance(new[0].pad, nn.CircularPad2d) and new[0].pad.padding == (0, 3, 0, 3)
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)  # 4 x the total stride: 1,024 shifts
    assert all_circular_shifts(new.eval(), x) < 1e-12
    assert all_circular_shifts(model, x) > 1e-3  # the original is not


# --------------------------------------------------------------------------- ceil_mode pools


def resnet_d_shortcut(c: int = 4) -> nn.Module:
    """ResNet-D's strided shortcut (AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
    1x1 conv, BN) between circular convs, then a global pool: no branch merge."""
    return nn.Sequential(
        nn.Conv2d(3, c, 3, padding=1), nn.ReLU(),
        nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False), nn.Conv2d(c, 2 * c, 1), nn.BatchNorm2d(2 * c),
        nn.ReLU(), nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class ResNetDBlock(nn.Module):
    """A downsampling ResNet-D block: strided 3x3 conv on the main branch, avg-pool + 1x1 conv
    on the shortcut, added, then a ReLU (so the global pool does not average each branch alone)."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.conv = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
                                        nn.Conv2d(c, 2 * c, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x).relu()
        return self.pool((self.conv(x) + self.downsample(x)).relu()).flatten(1)


@pytest.mark.filterwarnings("ignore:APS phases not shared")  # the block's merge: not this test's subject
@pytest.mark.parametrize("downsample", ["aps", "blur"])
def test_a_ceil_mode_pool_converts_where_its_output_size_does_not_change(downsample):
    torch.manual_seed(0)
    new, report = convert(ResNetDBlock(), downsample, padding="circular")
    assert report.unconverted == []
    assert "downsample.0" in report.paths
    assert new(torch.randn(2, 3, 32, 32)).shape == (2, 8)


def test_resnet_d_shortcut_is_exactly_invariant_after_aps_with_circular_padding():
    torch.manual_seed(0)
    model = resnet_d_shortcut().double().eval()
    new, report = quiet_convert(model, "aps", padding="circular")
    assert report.unconverted == [] and report.merges == [] and report.paths[1] == "2"
    assert report.invariance_check is not None and report.invariance_check < 1e-12
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    assert all_circular_shifts(new.eval(), x) < 1e-12
    assert all_circular_shifts(model, x) > 1e-6


def test_resnet_d_block_is_exactly_invariant_with_shared_phases():
    # the shortcut's avg pool and the main branch's strided conv both become APS layers; the
    # shortcut's follows the main branch's phase, so the sum moves as one map
    torch.manual_seed(0)
    model = ResNetDBlock().double().eval()
    new, report = quiet_convert(model, "aps", padding="circular")
    assert report.merges == []
    assert [(s.leader, s.followers) for s in report.shared_phases] == [("conv.pool", ("downsample.0.aps",))]
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    assert all_circular_shifts(new.eval(), x) < 1e-12
    assert all_circular_shifts(model, x) > 1e-6
    with pytest.warns(UserWarning, match="APS phases not shared"):
        unshared, _ = convert(model, "aps", padding="circular", share_phases=False)
    assert all_circular_shifts(unshared.eval(), x) > 1e-6


def test_a_ceil_mode_pool_whose_output_size_would_change_is_refused():
    model = resnet_d_shortcut()
    with pytest.raises(ValueError, match=r"\n  2 \(AvgPool2d\): strided pool with ceil_mode=True whose output size "
                                         r"would change at input 15x15: 8x8, 7x7 without ceil_mode\n"):
        convert(model, "blur", example_input=torch.randn(1, 3, 15, 15))
    with pytest.raises(ValueError, match=r"2 \(AvgPool2d\): strided pool with ceil_mode=True that no trace reached"):
        convert(model, "blur", trace=False)
    new, report = convert(model, "blur", skip=["2"], example_input=torch.randn(1, 3, 15, 15))
    assert new[2].ceil_mode and "2" not in report.paths


def _vgg_like() -> nn.Sequential:
    """A VGG-style tail: strided features, ``AdaptiveAvgPool2d((4, 4))``, flatten, linear."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((4, 4)), nn.Flatten(), nn.Linear(128, 10))


@pytest.mark.parametrize("downsample", ["blur", "aps"])
def test_an_adaptive_pool_that_is_the_identity_at_the_traced_size_is_left_alone(downsample: str) -> None:
    model = _vgg_like()
    new, report = convert(model, downsample, example_input=torch.randn(2, 3, 16, 16))
    assert new[6] is not model[6] and isinstance(new[6], nn.AdaptiveAvgPool2d)
    assert "6" not in [e.path for e in report.entries]
    assert any(n.startswith("6 (AdaptiveAvgPool2d): left alone, the identity at the traced input 4x4") for n in report.notes)


@pytest.mark.parametrize(("size", "said"), [(32, "that changes the size at input 8x8 to 4x4"),
                                            (8, "that changes the size at input 2x2 to 4x4")])
def test_an_adaptive_pool_that_changes_the_size_is_refused(size: int, said: str) -> None:
    with pytest.raises(ValueError, match=rf"6 \(AdaptiveAvgPool2d\): non-global adaptive pool \(output_size=\(4, 4\)\) {said}"):
        convert(_vgg_like(), "blur", example_input=torch.randn(2, 3, size, size))


def test_a_skipped_adaptive_pool_that_reduces_is_reported_unconverted() -> None:
    with warnings.catch_warnings():  # skipped on request: reported, not warned about
        warnings.simplefilter("error")
        _, report = convert(_vgg_like(), "blur", example_input=torch.randn(2, 3, 32, 32), skip=["6"])
    assert [(u.path, u.in_size, u.out_size, u.skipped) for u in report.unconverted] == [("6", (8, 8), (4, 4), True)]
