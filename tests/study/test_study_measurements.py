"""The study's shift set and per-image statistics, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from shiftlab.study.measurements import image_statistics, kind_distances, measure_canvas, periodicity, study_shifts
from shiftlab.zoo import build


def test_study_shifts_cover_every_residue_and_the_distance_range():
    shifts = study_shifts(8, 10, 4, "residues").offsets.round().long()
    pairs = {tuple(p) for p in shifts.tolist()}
    assert len(pairs) == len(shifts) == 97
    assert {(dy % 8, dx % 8) for dy, dx in pairs} == {(a, b) for a in range(8) for b in range(8)}
    assert {max(abs(dy), abs(dx)) for dy, dx in pairs} == {0, 1, 2, 3, 4, 6, 8, 10}
    assert {(0, 8), (8, 0), (0, -8), (-8, 0), (8, 8), (-8, -8), (8, -8), (-8, 8)} <= pairs
    assert max(max(abs(dy), abs(dx)) for dy, dx in pairs) <= 10


def test_matched_shifts_add_unaligned_shifts_at_the_aligned_distance():
    shifts = study_shifts(8, 10, 4).offsets.round().long()
    pairs = {tuple(p) for p in shifts.tolist()}
    residues = study_shifts(8, 10, 4, "residues").offsets.round().long()
    assert {tuple(p) for p in residues.tolist()} <= pairs
    assert len(pairs) == len(shifts) == 121  # 81 core + 4 x (6, 7, 8, 9, 10) axis + 4 diagonals + 16 ring
    ring = {p for p in pairs if max(abs(p[0]), abs(p[1])) == 8}
    aligned = {p for p in ring if p[0] % 8 == 0 and p[1] % 8 == 0}
    assert aligned == {(0, 8), (8, 0), (0, -8), (-8, 0), (8, 8), (-8, -8), (8, -8), (-8, 8)}
    assert ring - aligned == {(a * 8, b * o) for a in (1, -1) for b in (1, -1) for o in (1, 4)} | {
        (b * o, a * 8) for a in (1, -1) for b in (1, -1) for o in (1, 4)}
    assert {max(abs(dy), abs(dx)) for dy, dx in pairs} == set(range(11)) - {5}
    with pytest.raises(ValueError, match="shift_set must be one of"):
        study_shifts(8, 10, 4, "ring")


def test_distance_matched_signature_and_bands_by_hand():
    shifts = torch.tensor([[0, 0], [0, 1], [0, 8], [8, 8], [8, 4], [1, 8], [0, 9], [3, 2]], dtype=torch.float64)
    # image 0 keeps its class at every multiple of 8 and nowhere else; image 1 everywhere
    preds = torch.tensor([[2, 0, 2, 2, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]])
    s = image_statistics(preds, torch.tensor([2, 0]), shifts, n_classes=3, stride=8, in_range=4)
    assert s["aligned_at_stride"].tolist() == [1.0, 1.0]  # (0, 8), (8, 8)
    assert s["unaligned_at_stride"].tolist() == [0.0, 1.0]  # (8, 4), (1, 8); not (0, 9) or (0, 1)
    assert s["aliasing_gap_matched"].tolist() == [1.0, 0.0]
    assert s["agreement_d8"].tolist() == [2 / 4, 1.0] and s["agreement_d1"].tolist() == [0.0, 1.0]
    assert s["agreement_d9_10"].tolist() == [0.0, 1.0] and s["agreement_d2_3"].tolist() == [0.0, 1.0]
    assert s["accuracy_d8"].tolist() == [2 / 4, 0.0]
    assert math.isnan(s["agreement_d4_5"][0]) and math.isnan(s["accuracy_d6_7"][1])  # no shift there


def test_study_shifts_refuse_a_canvas_too_small():
    with pytest.raises(ValueError, match="larger canvas"):
        study_shifts(8, 3, 4)


def test_image_statistics_match_a_hand_computation():
    shifts = torch.tensor([[0, 0], [0, 1], [1, 0], [0, 2], [0, 8], [1, 1]], dtype=torch.float64)
    # image 0: class 3 at the centre and (0,1), class 5 elsewhere; image 1: always class 1
    preds = torch.tensor([[3, 3, 5, 5, 3, 5], [1, 1, 1, 1, 1, 1]])
    labels = torch.tensor([3, 2])
    s = image_statistics(preds, labels, shifts, n_classes=10, stride=8, in_range=1)
    assert s["consistency"][0] == pytest.approx((3 / 6) ** 2 + (3 / 6) ** 2) and s["consistency"][1] == 1.0
    assert s["agreement"].tolist() == pytest.approx([3 / 6, 1.0])
    assert s["accuracy"].tolist() == pytest.approx([3 / 6, 0.0])
    assert s["correct_centre"].tolist() == [1.0, 0.0] and s["worst_case"].tolist() == [0.0, 0.0]
    assert s["consistency_correct"][0] == s["consistency"][0] and math.isnan(s["consistency_correct"][1])
    assert s["aligned"].tolist() == [1.0, 1.0]  # (0, 8) is the only non-zero multiple of 8
    assert s["unaligned"][0] == pytest.approx(1 / 4)  # (0,1) agrees; (1,0), (0,2), (1,1) do not
    # unit steps inside the set: (0,0)-(0,1), (0,0)-(1,0), (0,1)-(0,2), (0,1)-(1,1), (1,0)-(1,1)
    assert s["flip_rate"][0] == pytest.approx(3 / 5) and s["flip_rate"][1] == 0.0
    assert s["agreement_in"][0] == pytest.approx(2 / 4)  # (0,0), (0,1), (1,0), (1,1)
    assert s["agreement_beyond"][0] == pytest.approx(1 / 2)  # (0,2) no, (0,8) yes
    assert s["accuracy_beyond"][0] == pytest.approx(1 / 2)


def test_kind_distances_are_the_mean_distances_of_the_aligned_and_the_other_nonzero_shifts():
    shifts = torch.tensor([[0, 0], [0, 1], [1, 0], [0, 2], [0, 8], [-8, 8], [2, -3]], dtype=torch.float64)
    assert kind_distances(shifts, 8) == pytest.approx((8.0, (1 + 1 + 2 + 3) / 4))  # (0, 0) is neither
    far, near = kind_distances(shifts[:4], 8)
    assert math.isnan(far) and near == pytest.approx(4 / 3)
    # the second design's set: the 8 multiples of 8 lie 8 px out, the 88 other shifts 3.45 px on average
    assert kind_distances(study_shifts(8, 10, 4, "residues").offsets, 8) == pytest.approx((8.0, 304 / 88))


def test_periodicity_groups_by_residue_without_the_zero_shift():
    shifts = torch.tensor([[0, 0], [0, 8], [0, 1], [0, 9], [0, -8]], dtype=torch.float64)
    agree = torch.tensor([1.0, 0.9, 0.2, 0.4, 0.7], dtype=torch.float64)
    p = periodicity(shifts, agree, 8)
    assert p.residue_agreement[0][0] == pytest.approx(0.8)  # (0,8) and (0,-8), not (0,0)
    assert p.residue_agreement[0][1] == pytest.approx(0.3)
    assert p.residue_agreement[1][1] is None
    assert p.dx_values == [-8, 0, 1, 8, 9] and p.agreement_by_dx == pytest.approx([0.7, 1.0, 0.2, 0.9, 0.4])


def test_a_constant_classifier_is_perfectly_consistent_and_right_or_wrong_everywhere():
    class Constant(nn.Module):
        def forward(self, x):
            return torch.tensor([0.0, 1.0]).expand(x.shape[0], 2)

    images = torch.rand(5, 1, 24, 24)
    m = measure_canvas(Constant().eval(), images, torch.tensor([1, 1, 0, 1, 0]), shifts=study_shifts(8, 10, 4),
                       n_classes=2, stride=8, in_range=4)
    assert np.all(m.per_image["consistency"] == 1.0) and np.all(m.per_image["flip_rate"] == 0.0)
    assert m.per_image["worst_case"].tolist() == [1.0, 1.0, 0.0, 1.0, 0.0]


def test_circular_gap_trunk_agrees_at_every_multiple_of_the_stride_on_a_zero_canvas():
    """Objects on a blank canvas: a circular-padded global-pool net is exactly invariant to canvas
    moves by multiples of S (they are circular shifts of the canvas); the aliasing signature sees it."""
    model = build("strided_gap", width=4, input_size=48, padding_mode="circular", seed=0).double().eval()
    images = torch.zeros(6, 1, 48, 48, dtype=torch.float64)
    images[:, :, 14:34, 14:34] = torch.rand(6, 1, 20, 20, dtype=torch.float64)
    m = measure_canvas(model, images, torch.zeros(6, dtype=torch.long), shifts=study_shifts(8, 10, 4),
                       n_classes=10, stride=8, in_range=4)
    assert np.all(m.per_image["aligned"] == 1.0)


class PhaseOfTheObject(nn.Module):
    """Class 1 when the brightest pixel's row and column are both 0 mod 8, else class 0: a
    classifier whose prediction for a moved object comes back exactly at the multiples of 8 and
    nowhere else (the aliasing signature, constructed)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1).argmax(dim=1)
        row, col = flat // x.shape[-1], flat % x.shape[-1]
        on_grid = ((row % 8 == 0) & (col % 8 == 0)).float()
        return torch.stack([1 - on_grid, on_grid], dim=1)


class AlwaysOne(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([0.0, 1.0]).expand(x.shape[0], 2)


def test_the_distance_matched_signature_of_a_model_invariant_only_at_multiples_of_8_and_of_one_without():
    images = torch.zeros(3, 1, 48, 48)
    for i, (r, c) in enumerate(((24, 24), (16, 32), (24, 16))):  # a single bright pixel on the 8-grid
        images[i, 0, r, c] = 1.0
    labels = torch.ones(3, dtype=torch.long)
    shifts = study_shifts(8, 10, 4)
    aliasing = measure_canvas(PhaseOfTheObject().eval(), images, labels, shifts=shifts, n_classes=2, stride=8,
                              in_range=4).per_image
    assert aliasing["aligned_at_stride"].tolist() == [1.0, 1.0, 1.0]  # the 8 multiples of 8 at 8 px
    assert aliasing["unaligned_at_stride"].tolist() == [0.0, 0.0, 0.0]  # the 16 other shifts at 8 px
    assert aliasing["aliasing_gap_matched"].tolist() == [1.0, 1.0, 1.0]
    assert aliasing["agreement_d1"].tolist() == [0.0] * 3 and aliasing["agreement_d8"].tolist() == [8 / 24] * 3
    none = measure_canvas(AlwaysOne().eval(), images, labels, shifts=shifts, n_classes=2, stride=8, in_range=4).per_image
    assert none["aliasing_gap_matched"].tolist() == [0.0, 0.0, 0.0] and none["aligned_at_stride"].tolist() == [1.0] * 3
