"""shiftlab.zoo.info: parameters, multiply-adds and receptive field, against hand counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shiftlab.zoo import ModelInfo, ZooNet, build, count_parameters, info, names, receptive_field

pytestmark = pytest.mark.usefixtures("one_thread")


def test_macs_of_strided_gap_by_hand() -> None:
    # width 8, input 1x32x32; a conv costs (output elements) * (in channels * 3 * 3)
    conv1 = (8 * 16 * 16) * (1 * 9)  # stride 2: 32 -> 16            = 18,432
    conv2 = (16 * 8 * 8) * (8 * 9)  # 16 -> 8                         = 73,728
    conv3 = (32 * 4 * 4) * (16 * 9)  # 8 -> 4                         = 73,728
    head = (10 * 4 * 4) * 32  # 1x1 conv 32 -> 10 on 4x4              =  5,120
    assert conv1 + conv2 + conv3 + head == 171_008
    got = info(build("strided_gap", width=8), 32)
    assert got == ModelInfo(params=6330, macs=171_008, receptive_field=15, total_stride=8)


def test_macs_of_maxpool_fc_by_hand() -> None:
    # width 8, input 1x32x32; stride-1 convs, each followed by MaxPool2d(2) (not counted)
    conv1 = (8 * 32 * 32) * (1 * 9)  # = 73,728
    conv2 = (16 * 16 * 16) * (8 * 9)  # = 294,912
    conv3 = (32 * 8 * 8) * (16 * 9)  # = 294,912
    fc = (32 * 4 * 4) * 10  # Linear 512 -> 10 = 5,120
    assert conv1 + conv2 + conv3 + fc == 668_672
    model = build("maxpool_fc", width=8)
    got = info(model, 32)
    assert got.macs == 668_672 and got.params == count_parameters(model) == 11_130
    assert got.to_dict() == {"params": 11_130, "macs": 668_672, "receptive_field": 22, "total_stride": 8}


def test_blur_filters_are_counted_as_depthwise_convs() -> None:
    # BlurPool2d(filt_size 4, stride 2): each output element costs 4 * 4 multiply-adds
    blur = (8 * 16 * 16 + 16 * 8 * 8 + 32 * 4 * 4) * 16  # = 57,344
    maxpool = info(build("maxpool_gap", width=8), 32).macs
    assert info(build("blurstrided_gap", width=8), 32).macs == maxpool + blur
    assert info(build("maxblur_gap", width=8), 32).macs == maxpool + blur
    # APS without a blur (filt_size 1) only selects a phase: no multiply-adds beyond the convs
    assert info(build("aps_gap", width=8), 32).macs == maxpool
    blur3 = (8 * 32 * 32 + 16 * 16 * 16 + 32 * 8 * 8) * 9  # APS blurs at stride 1, before subsampling
    assert info(build("aps_gap", width=8, filt_size=3), 32).macs == maxpool + blur3


def test_macs_of_the_control_kinds_by_hand() -> None:
    # width 16, input 1x32x32, GAP head (1x1 conv 64 -> 10 on 4x4 = 10,240)
    head = (10 * 4 * 4) * 64
    stride1 = (16 * 32 * 32) * (1 * 9) + (32 * 16 * 16) * (16 * 9) + (64 * 8 * 8) * (32 * 9)  # = 2,506,752
    # allconv: each stage's extra conv3x3 c -> c at stride 2 (16x16, 8x8, 4x4 outputs)
    extra_convs = (16 * 16 * 16) * (16 * 9) + (32 * 8 * 8) * (32 * 9) + (64 * 4 * 4) * (64 * 9)  # = 1,769,472
    assert stride1 + extra_convs + head == 4_286_464
    assert info(build("allconv_gap"), 32) == ModelInfo(params=72_890, macs=4_286_464, receptive_field=29, total_stride=8)
    # avgpool: the pool is not counted (like max-pooling)
    assert info(build("avgpool_gap"), 32) == ModelInfo(params=24_170, macs=2_516_992, receptive_field=22, total_stride=8)
    # learned: a 4x4 depthwise filter per output element, as the blur
    depthwise = (16 * 16 * 16 + 32 * 8 * 8 + 64 * 4 * 4) * 16  # = 114,688
    assert stride1 + depthwise + head == 2_631_680
    for name in ("learned_gap", "learnedblur_gap"):
        assert info(build(name), 32) == ModelInfo(params=25_962, macs=2_631_680, receptive_field=36, total_stride=8)
    assert info(build("learned_gap"), 32).macs == info(build("blurstrided_gap"), 32).macs


def test_grouped_convs_and_input_size() -> None:
    trunk = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1, groups=8))
    model = ZooNet(trunk, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)),
                   name="custom", downsampling="strided", head_kind="gap", total_stride=2)
    # (8 * 8 * 8) * (4 / 2 * 9) + (8 * 8 * 8) * (8 / 8 * 9) + 8 * 3, in_channels from the first conv
    assert info(model, 16).macs == 512 * 18 + 512 * 9 + 24
    assert info(model, 16).receptive_field == 3 + 2 * 2
    # every layer's cost scales with the pixel count
    assert info(build("strided_gap"), (64, 32)).macs == 2 * info(build("strided_gap"), 32).macs


def test_receptive_fields_by_hand() -> None:
    # r += (k - 1) * j; j *= s, per layer
    # strided: conv3 s2 x3: 1 + 2*1 + 2*2 + 2*4 = 15
    # maxpool: (conv3 s1, max2 s2) x3: 1 + 2 + 1 | + 2*2 + 1*2 | + 2*4 + 1*4 = 22
    # blurstrided: (conv3 s1, blur4 s2) x3: 1 + 2 + 3 | + 2*2 + 3*2 | + 2*4 + 3*4 = 36
    # maxblur: (conv3 s1, max2 s1, blur4 s2) x3: 1 + 2 + 1 + 3 | + (2 + 1 + 3)*2 | + (2 + 1 + 3)*4 = 43
    # aps: (conv3 s1, max2 s1, phase select k1 s2) x3: as maxpool = 22
    # allconv: (conv3 s1, conv3 s2) x3: 1 + 2 + 2 | + 2*2 + 2*2 | + 2*4 + 2*4 = 29
    # avgpool: as maxpool = 22; learned, learnedblur: (conv3 s1, 4x4 depthwise s2) x3: as blurstrided = 36
    expected = {"strided": 15, "maxpool": 22, "blurstrided": 36, "maxblur": 43, "aps": 22, "allconv": 29,
                "avgpool": 22, "learned": 36, "learnedblur": 36}
    for name in names():
        model = build(name)
        assert info(model, 32).receptive_field == expected[model.downsampling], name
        assert receptive_field(model.features) == (expected[model.downsampling], 8)
    for name in ["maxblur_gap", "blurstrided_fc", "aps_gmp"]:  # padding layers add nothing
        circular = build(name, padding_mode="circular")
        assert receptive_field(circular.features)[0] == expected[circular.downsampling]
    # (conv 2 + max 1 + blur 1) * j
    assert receptive_field(build("maxblur_gap", filt_size=2).features) == (1 + 4 * 1 + 4 * 2 + 4 * 4, 8)


def test_info_leaves_the_model_as_it_was() -> None:
    model = build("maxblur_fc", width=4).double()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    info(model, 32)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not model._forward_hooks and not any(m._forward_hooks for m in model.modules())


def test_info_refuses_other_modules_and_unknown_layers() -> None:
    with pytest.raises(TypeError, match="ZooNet"):
        info(nn.Sequential(nn.Conv2d(1, 2, 3)), 32)  # type: ignore[arg-type]
    odd = ZooNet(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2)), nn.Flatten(),
                 name="odd", downsampling="strided", head_kind="fc", total_stride=1)
    with pytest.raises(ValueError, match="Upsample"):
        info(odd, 8)
    lying = build("strided_gap")
    lying.total_stride = 4
    with pytest.raises(ValueError, match="downsample by 8, but total_stride is 4"):
        info(lying, 32)
