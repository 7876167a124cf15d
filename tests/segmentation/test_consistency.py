"""Segmentation consistency (shiftlab.segmentation): shifted maps and their valid pixels, mIoU and
agreement (ASSC) by hand on tiny maps, EQ-T, the exact U-Net, bad input, the model left as it was."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from shiftlab.measure.shifts import shift
from shiftlab.segmentation import confusion, mean_iou, segmentation_shifts, valid_pixels
from shiftlab.zoo import UNet


def test_zero_fill_moves_the_map_and_marks_the_vacated_pixels_invalid():
    x = torch.arange(9.0).view(1, 3, 3)
    y, valid = shift(x, 1, -1, "zeros"), valid_pixels((1, -1), (3, 3), "zeros")
    assert y.tolist() == [[[0, 0, 0], [1, 2, 0], [4, 5, 0]]]
    assert valid.tolist() == [[False, False, False], [True, True, False], [True, True, False]]
    y, valid = shift(x, 1, -1, "circular"), valid_pixels((1, -1), (3, 3), "circular")
    assert torch.equal(y, torch.roll(x, (1, -1), (1, 2))) and valid.all()


def test_confusion_and_mean_iou_by_hand():
    target = torch.tensor([[[0, 0, 1], [1, 2, 2]]])
    predicted = torch.tensor([[[0, 1, 1], [1, 2, 0]]])
    counts = confusion(predicted, target, 3)
    assert counts.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # IoU: class 0: 1 / (2 + 2 - 1) = 1/3; class 1: 2 / (3 + 2 - 2) = 2/3; class 2: 1 / (1 + 2 - 1) = 1/2
    assert mean_iou(counts) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    valid = torch.tensor([[True, False, True], [True, True, False]])
    assert confusion(predicted, target, 3, valid).sum() == 4
    assert math.isnan(mean_iou(torch.zeros(2, 2, dtype=torch.long)))


class Ramp(nn.Module):
    """Logits ``[x, column / W]``: class 1 wherever the pixel is darker than its column's ramp (not
    equivariant: the ramp stays where it is)."""

    def forward(self, x: Tensor) -> Tensor:
        ramp = torch.arange(x.shape[-1], dtype=x.dtype) / x.shape[-1]
        return torch.cat([x, ramp.expand_as(x)], dim=1)


def hand_agreement(model: nn.Module, x: Tensor, d: tuple[int, int]) -> float:
    """ASSC at ``d`` (zero fill) by loops over pixels."""
    with torch.no_grad():
        ref, moved = model(x).argmax(1), model(shift(x, *d, "zeros")).argmax(1)
    n, h, w = ref.shape
    same = total = 0
    for b in range(n):
        for i in range(h):
            for j in range(w):
                si, sj = i - d[0], j - d[1]
                if 0 <= si < h and 0 <= sj < w:
                    same += int(moved[b, i, j] == ref[b, si, sj])
                    total += 1
    return same / total


def test_agreement_matches_a_hand_count_and_a_pointwise_model_agrees_everywhere():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 6, 6)
    masks = torch.randint(0, 2, (3, 6, 6))
    shifts = [(0, 0), (0, 1), (2, -1), (-3, 2)]
    res = segmentation_shifts(Ramp(), x, masks, shifts)
    assert res.agreement_by_shift == pytest.approx([hand_agreement(Ramp(), x, d) for d in shifts])
    assert res.agreement_by_shift[0] == 1.0 and min(res.agreement_by_shift[1:]) < 1.0
    pointwise = nn.Conv2d(1, 2, 1)
    res = segmentation_shifts(pointwise, x, masks, shifts)
    assert res.agreement_by_shift == [1.0] * 4 and res.massc == 1.0
    assert all(e == math.inf for e in res.eq_t_db_by_shift)
    with torch.no_grad():
        assert res.miou == pytest.approx(mean_iou(confusion(pointwise(x).argmax(1), masks, 2)))


def test_eq_t_is_finite_where_the_logits_move_otherwise():
    x = torch.rand(2, 1, 6, 6)
    res = segmentation_shifts(Ramp(), x, torch.zeros(2, 6, 6, dtype=torch.long), [(0, 0), (0, 2)])
    with torch.no_grad():
        ref = Ramp()(x)
        out = Ramp()(shift(x, 0, 2, "zeros"))
        target, valid = shift(ref, 0, 2, "zeros"), valid_pixels((0, 2), (6, 6), "zeros")
        mse = float((out - target).square()[..., valid].mean())
    assert res.eq_t_db_by_shift[0] == math.inf
    assert res.eq_t_db_by_shift[1] == pytest.approx(10 * math.log10(float(ref.max() - ref.min()) ** 2 / mse))


def test_the_exact_unet_agrees_at_every_circular_shift_and_a_fixed_phase_one_only_at_multiples_of_its_stride():
    torch.manual_seed(0)
    x, masks = torch.rand(2, 1, 16, 16, dtype=torch.float64), torch.randint(0, 3, (2, 16, 16))
    shifts = [(dy, dx) for dy in range(0, 16, 3) for dx in range(0, 16, 5)]
    exact = UNet("aps", "aps", num_classes=3, width=4, levels=2, padding_mode="circular").double()
    res = segmentation_shifts(exact, x, masks, shifts, mode="circular")
    assert res.massc == 1.0 and all(e == math.inf or e > 250 for e in res.eq_t_db_by_shift)
    fixed = UNet("maxpool", "transposed", num_classes=3, width=4, levels=2, padding_mode="circular").double()
    res = segmentation_shifts(fixed, x, masks, shifts, mode="circular")
    aligned = res.aligned(4)
    assert all(e > 250 for e, a in zip(res.eq_t_db_by_shift, aligned, strict=True) if a)
    assert max(e for e, a in zip(res.eq_t_db_by_shift, aligned, strict=True) if not a) < 150


def test_the_model_is_left_as_it_was():
    net = UNet("maxpool", "bilinear", num_classes=2, width=4, levels=1).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    segmentation_shifts(net, torch.rand(2, 1, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long), [(0, 1)])
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_bad_input_gets_a_clear_error():
    x, masks = torch.rand(2, 1, 6, 6), torch.zeros(2, 6, 6, dtype=torch.long)
    with pytest.raises(ValueError, match=r"masks \[N, H, W\] int64"):
        segmentation_shifts(Ramp(), x, masks.float(), [(0, 1)])
    with pytest.raises(ValueError, match="moves everything off a 6x6 canvas"):
        segmentation_shifts(Ramp(), x, masks, [(6, 0)])
    with pytest.raises(ValueError, match="mode must be 'zeros' or 'circular'"):
        segmentation_shifts(Ramp(), x, masks, [(1, 0)], mode="crop")
    with pytest.raises(ValueError, match="classes outside 0 .. 1"):
        segmentation_shifts(Ramp(), x, masks + 2, [(1, 0)])
    with pytest.raises(ValueError, match="logits \\[N, K, H, W\\] at the input's size"):
        segmentation_shifts(nn.Flatten(), x, masks, [(1, 0)])
    with pytest.raises(ValueError, match="no shifts"):
        segmentation_shifts(Ramp(), x, masks, [])


def test_per_image_counts_and_agreement_add_up_to_the_pooled_ones():
    from shiftlab.segmentation import image_confusions
    from shiftlab.zoo import UNet

    torch.manual_seed(0)
    net = UNet("maxpool", "transposed", num_classes=3, width=4, levels=2).eval()
    x, y = torch.rand(5, 1, 16, 16), torch.randint(0, 3, (5, 16, 16))
    res = segmentation_shifts(net, x, y, [(0, 0), (1, 2), (-3, 0)], mode="zeros")
    assert res.agreement_per_image.shape == (5, 3)
    torch.testing.assert_close(res.agreement_per_image.mean(0), torch.tensor(res.agreement_by_shift, dtype=torch.float64))
    assert res.confusion_centre.shape == (5, 3, 3)
    assert mean_iou(res.confusion_centre.sum(0)) == res.miou
    p, t = torch.randint(0, 3, (4, 6, 6)), torch.randint(0, 3, (4, 6, 6))
    valid = valid_pixels((1, -2), (6, 6), "zeros")
    per = image_confusions(p, t, 3, valid)
    assert torch.equal(per.sum(0), confusion(p, t, 3, valid))
    assert torch.equal(per[2], confusion(p[2:3], t[2:3], 3, valid))
    assert int(res.confusion_shifted.sum()) == int(valid_pixels((1, 2), (16, 16), "zeros").sum()
                                                   + valid_pixels((-3, 0), (16, 16), "zeros").sum()) * 5


class _PositionBias(torch.nn.Module):
    """Class 1 where ``x + bias > 0.5``, with ``bias`` a fixed map: a prediction tied to the canvas."""

    def __init__(self, bias):
        super().__init__()
        self.register_buffer("bias", bias)

    def forward(self, x):
        return torch.cat([torch.full_like(x, 0.5), x + self.bias], dim=1)


def test_object_agreement_counts_only_pixels_either_map_labels_an_object():
    torch.manual_seed(1)
    x = (torch.rand(3, 1, 8, 8) > 0.8).float()
    bias = torch.where(torch.rand(8, 8) > 0.85, 0.6, 0.0)
    net = _PositionBias(bias)
    masks = (x[:, 0] > 0).long()
    res = segmentation_shifts(net, x, masks, [(0, 0), (2, -1)], mode="zeros")
    ref = (x[:, 0] + bias > 0.5)
    moved = (shift(x, 2, -1, "zeros")[:, 0] + bias > 0.5)
    target = shift(ref.long(), 2, -1, "zeros").bool()
    valid = valid_pixels((2, -1), (8, 8), "zeros")
    for i in range(3):
        objects = (moved[i] | target[i]) & valid
        expected = float(((moved[i] == target[i]) & objects).sum()) / float(objects.sum())
        assert res.object_agreement_per_image[i, 1].item() == pytest.approx(expected)
        assert res.agreement_per_image[i, 1].item() == pytest.approx(float((moved[i] == target[i])[valid].float().mean()))
    assert (res.object_agreement_per_image[:, 1] < res.agreement_per_image[:, 1]).all()  # background dilutes ASSC
    assert (res.object_agreement_per_image[:, 0] == 1).all()
    assert res.object_agreement_by_shift[1] == pytest.approx(float(res.object_agreement_per_image[:, 1].mean()))
    empty = segmentation_shifts(net.__class__(torch.zeros(8, 8)), torch.zeros(1, 1, 8, 8), torch.zeros(1, 8, 8).long(),
                                [(1, 1)], mode="zeros")
    assert torch.isnan(empty.object_agreement_per_image).all() and empty.agreement_by_shift == [1.0]
    assert math.isnan(empty.object_agreement_by_shift[0]) and empty.to_dict()["object_agreement_by_shift"] == [None]
