"""The polyphase certificate: on circular-padded global-pool models the certified full circular
profile equals the naive one exactly (float64, random weights, several strides and sizes); a
model or input that breaks the premise is never certified, and ``method`` says which was used."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import shiftlab as sl
from shiftlab.measure.certificate import residue_plan
from shiftlab.measure.shiftsets import ShiftSet

pytestmark = pytest.mark.usefixtures("one_thread")


def strided_gap(strides, channels=3, padding="circular", seed=0) -> nn.Module:
    """Convs with the given strides (each ``(sy, sx)``), ReLU, then global average pool and a linear head."""
    torch.manual_seed(seed)
    layers, c = [], 1
    for s in strides:
        layers += [nn.Conv2d(c, channels, 3, stride=s, padding=1, padding_mode=padding), nn.ReLU()]
        c = channels
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 5)).double().eval()


def images(n, h, w, seed=1):
    return torch.randn(n, 1, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def naive_and_certified(model, x, shifts, labels=None):
    naive = sl.invariance(model, x, labels, shifts=shifts, certify=False, keep_predictions=True)
    cert = sl.invariance(model, x, labels, shifts=shifts, certify=True, keep_predictions=True)
    return naive, cert


def assert_equal_profiles(naive, cert):
    assert naive.method == "exact" and cert.method == "certified"
    assert torch.equal(cert.predictions, naive.predictions)
    a, b = cert.to_dict(), naive.to_dict()
    for key in ("method", "certificate"):
        a.pop(key), b.pop(key)
    assert a.pop("top1_prob_change") == pytest.approx(b.pop("top1_prob_change"), rel=1e-9, abs=1e-15)
    assert a.pop("mean_top1_prob") == pytest.approx(b.pop("mean_top1_prob"), rel=1e-9)
    assert a == b


@pytest.mark.parametrize("strides, size", [
    ([2], (6, 8)), ([2, 2], (8, 12)), ([2, 2, 2], (16, 16)), ([(2, 1), 2], (8, 6)), ([3], (9, 6)),
])
def test_certified_full_profile_equals_the_naive_one(strides, size):
    model, x = strided_gap(strides), images(4, *size)
    shifts = ShiftSet.full(*size)
    naive, cert = naive_and_certified(model, x, shifts, labels=torch.arange(4) % 5)
    assert_equal_profiles(naive, cert)
    pairs = [(s, s) if isinstance(s, int) else s for s in strides]
    assert cert.certificate.stride == (int(torch.tensor(pairs)[:, 0].prod()), int(torch.tensor(pairs)[:, 1].prod()))
    assert cert.certificate.holds
    assert naive.top1_prob_change > 1e-5  # the outputs move with the shift: not a comparison of constants


@pytest.mark.parametrize("name", ["strided_gap", "maxpool_gap", "blurstrided_gap", "maxblur_gap", "strided_gmp"])
def test_zoo_global_pool_models_are_certified_at_stride_8(name):
    model = sl.zoo.build(name, num_classes=10, width=4, input_size=16, padding_mode="circular", seed=2).double().eval()
    x = images(3, 16, 16)
    shifts = ShiftSet.full(16, 16)
    naive, cert = naive_and_certified(model, x, shifts)
    assert_equal_profiles(naive, cert)
    assert cert.certificate.stride == (8, 8)


class Counting(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.images = model, 0

    def forward(self, x):
        self.images += x.shape[0]
        return self.model(x)


def test_certified_profile_costs_one_pass_per_residue():
    counted = Counting(strided_gap([2, 2])).eval()
    x = images(5, 8, 12)
    res = sl.invariance(counted, x, shifts=ShiftSet.full(8, 12), certify="auto")
    assert res.method == "certified"
    checks = counted.images - 5 * 16  # 4 x 4 residues per image; the rest is the premise check
    assert 0 < checks <= 8 * 6  # at most 8 images, unshifted and at 5 aligned shifts


@pytest.mark.parametrize("model, x, shifts, mode, reason", [
    (strided_gap([2, 2], padding="zeros"), images(3, 8, 8), ShiftSet.full(8, 8), "circular", "not invariant"),
    (sl.zoo.build("maxpool_fc", num_classes=10, width=4, input_size=16, padding_mode="circular").double().eval(),
     images(3, 16, 16), ShiftSet.full(16, 16), "circular", "not invariant"),
    (strided_gap([2, 2, 2]), images(3, 20, 20), ShiftSet.grid(3), "circular", "no total stride"),
    (strided_gap([2, 2]), images(3, 8, 8), ShiftSet.grid(3), "zeros", "needs circular shifts"),
    (strided_gap([2, 2]), images(3, 8, 8), ShiftSet.from_list([(0, 0.5), (4, 4)]), "circular", "fractional"),
], ids=["zero-padding", "fc-head", "size-not-divisible", "zero-fill", "fractional"])
def test_a_model_or_input_that_breaks_the_premise_is_never_certified(model, x, shifts, mode, reason):
    auto = sl.invariance(model, x, shifts=shifts, mode=mode, keep_predictions=True)
    assert auto.method == "exact"
    if auto.certificate is not None:  # tried (circular integer shifts) and refused, with the reason
        assert not auto.certificate.holds and reason in auto.certificate.reason
    naive = sl.invariance(model, x, shifts=shifts, mode=mode, certify=False, keep_predictions=True)
    assert torch.equal(auto.predictions, naive.predictions)
    with pytest.raises(ValueError, match=f"certificate does not hold: .*{reason}"):
        sl.invariance(model, x, shifts=shifts, mode=mode, certify=True)


def test_auto_does_not_certify_when_nothing_is_saved_and_true_still_does():
    model, x = strided_gap([2, 2]), images(2, 8, 8)
    small = [(0, 0), (1, 2), (3, 3)]  # all distinct residues mod 4
    assert sl.invariance(model, x, shifts=small).method == "exact"
    assert sl.invariance(model, x, shifts=small, certify=True).method == "certified"
    with pytest.raises(ValueError, match="certify must be 'auto', True or False"):
        sl.invariance(model, x, shifts=small, certify="yes")


def test_sampled_shift_sets_say_so():
    model, x = strided_gap([2, 2], padding="zeros"), images(2, 8, 8)
    assert sl.invariance(model, x, shifts=ShiftSet.random(5, 3, seed=1)).method == "sampled"


def test_residue_plan_maps_each_shift_to_its_residue():
    shifts = ShiftSet.from_list([(0, 0), (4, 0), (-3, 5), (1, 1), (5, 9), (2, 3)])
    residues, index = residue_plan(shifts, (4, 4))
    got = [residues.as_tuples()[i] for i in index.tolist()]
    assert got == [(0, 0), (0, 0), (1, 1), (1, 1), (1, 1), (2, 3)]
