"""shiftlab.zoo.info of the segmentation U-Nets: multiply-adds against an independent hook count,
the receptive field by hand and against the support of an output logit's input gradient."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from shiftlab.zoo import UNet, count_parameters, info, receptive_field, unet_names

pytestmark = pytest.mark.usefixtures("one_thread")


def unet(name: str, **kwargs) -> UNet:
    _, down, up = name.split("_")
    torch.manual_seed(0)
    return UNet(down, up, **kwargs)


def weight_macs(model: nn.Module, x: Tensor) -> int:
    """Every weight of a Conv2d, ConvTranspose2d or Linear times the positions it is applied at:
    a conv's output pixels, a transposed conv's input pixels (each input pixel scatters through
    every weight once), a Linear's rows. Runs ``model`` on ``x`` (one image) in eval mode."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        where = inputs[0] if isinstance(module, nn.ConvTranspose2d) else output
        total += module.weight.numel() * where[0, 0].numel()  # one image: H * W pixels, or 1 row of a Linear

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(x)
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("name", unet_names())
def test_macs_are_the_weights_times_their_positions_plus_the_blurs(name):
    width, levels, side = 8, 3, 64
    model = unet(name, num_classes=11, width=width, levels=levels)
    _, down, up = name.split("_")
    blurs = 0
    for level in range(levels):
        channels = width * 2**level
        if down == "blur":  # MaxBlurPool2d's 4x4 blur, at the resolution it writes (stride 2)
            blurs += channels * (side // 2 ** (level + 1)) ** 2 * 16
        if up == "aps":  # APS-U's 3x3 blur on the deeper level's 2 * channels, at the resolution it writes
            blurs += 2 * channels * (side // 2**level) ** 2 * 9
    got = info(model, side)
    assert model.training and not any(m._forward_hooks for m in model.modules())  # left as it was
    assert got.macs == weight_macs(model, torch.zeros(1, 1, side, side)) + blurs
    assert got.params == count_parameters(model) and got.total_stride == 8


def test_macs_of_a_transposed_conv_by_hand():
    # width 8, levels 3, 11 classes, 1x64x64; a conv costs (output elements) * (in channels * k * k)
    encoder = 8 * 64**2 * 9 * (1 + 8) + 16 * 32**2 * 9 * (8 + 16) + 32 * 16**2 * 9 * (16 + 32)  # 9,732,096
    bottleneck = 64 * 8**2 * 9 * (32 + 64)  # 3,538,944
    decoder = 8 * 64**2 * 9 * (16 + 8) + 16 * 32**2 * 9 * (32 + 16) + 32 * 16**2 * 9 * (64 + 32)  # 21,233,664
    head = 11 * 64**2 * 8  # 360,448
    # ConvTranspose2d(2c, c, 2, stride 2) on an h x h map: (2c * h * h input elements) * (c * 2 * 2) = 8 c^2 h^2,
    # the same as bilinear's conv1x1(2c, c) on the 2h x 2h map, (c * 4 h^2) * 2c (the interpolation is not counted)
    up = sum(2 * c * h * h * c * 4 for c, h in ((8, 32), (16, 16), (32, 8)))  # 1,572,864
    assert encoder + bottleneck + decoder + head + up == 36_438_016
    for name in ("unet_maxpool_transposed", "unet_maxpool_bilinear", "unet_aps_transposed"):
        assert info(unet(name, width=8, levels=3), 64).macs == 36_438_016, name


def test_receptive_fields_by_hand():
    # encoder + bottleneck as a trunk (r += (k - 1) * j; j *= s), levels 2, maxpool:
    # conv conv (5) max (6, j 2) conv conv (14) max (16, j 4) conv conv (32): r = 32, j = 4
    # decoder, backwards from one logit, in units of each map (head 1x1: 1 unit):
    # - transposed: dec0 -> 5 units; up0 (o -> o // 2) -> 3; dec1 -> 7; up1 -> 4; field 32 + 3 * 4 = 44
    # - bilinear (taps floor(c), ceil(c), c = o/2 - 1/4): 5 -> 4; dec1 -> 8; up1 -> 6 where the
    #   window starts odd (5 where even); field 32 + 5 * 4 = 52
    # - APS-U (3x3 blur reads 7 zero-inserted positions, 4 or 3 of them the kept phase): 5 -> 4; 8; 10 -> 5;
    #   field 32 + 4 * 4 = 48 (aps down: dense max k 2 then phase select k 1, the same trunk as maxpool)
    assert receptive_field(unet("unet_maxpool_transposed", levels=2)) == (44, 4)
    assert receptive_field(unet("unet_maxpool_bilinear", levels=2)) == (52, 4)
    assert receptive_field(unet("unet_aps_aps", levels=2)) == (48, 4)
    # strided down: conv3 s2 adds 2 * j (one more than max 2x2) per level: 2 * (1 + 2) = 3 pixels more at levels 2
    assert receptive_field(unet("unet_strided_transposed", levels=2)) == (47, 4)
    for name in unet_names():  # padding adds nothing
        assert receptive_field(unet(name, padding_mode="circular")) == receptive_field(unet(name))


def gradient_sides(model: UNet, side: int, per_phase: int) -> list[int]:
    """For ``per_phase`` random images per output phase ``0 .. 2 ** levels - 1``: the side of the
    bounding box of the non-zero input gradient of one logit near the centre (0 where none is)."""
    period = 2**model.levels
    model = model.double().eval()
    x = torch.randn(period * per_phase, 1, side, side, dtype=torch.float64, requires_grad=True)
    at = side // 2 + torch.arange(len(x)) % period
    model(x)[torch.arange(len(x)), 0, at, at].sum().backward()  # BN in eval: each image its own gradient
    assert x.grad is not None
    nonzero = x.grad[:, 0] != 0
    assert not (nonzero[:, [0, -1], :].any() or nonzero[:, :, [0, -1]].any())  # no border clamped a window
    sides = []
    for support in nonzero:
        rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
        sides.append(0 if not len(rows) else int(max(rows[-1] - rows[0], cols[-1] - cols[0])) + 1)
    return sides


@pytest.mark.parametrize(("name", "levels", "side"), [*((name, 2, 80) for name in unet_names()),
                                                      ("unet_strided_transposed", 3, 160),
                                                      ("unet_blur_bilinear", 3, 160), ("unet_aps_aps", 3, 160)])
def test_receptive_field_is_the_widest_input_gradient_of_one_logit(name, levels, side):
    # float64, random weights: no weight is zero, so a logit's input gradient reaches every pixel it
    # depends on, except through a dead ReLU or a max's losing inputs (fewer, never more pixels); and
    # the window of one logit depends on its phase mod 2 ** levels (after an upsampling) and on the
    # phase APS keeps. So each image's support is bounded by the field, and the widest reaches it
    # (max == field: none wider, one as wide).
    model = unet(name, num_classes=3, width=4, levels=levels)
    field = receptive_field(model)[0]
    sides = gradient_sides(model, side, per_phase=2)
    assert max(sides) == field, sides
