"""Measure one trained model of the study: accuracy, invariance on the canvas and circularly,
the accuracy heatmap and its periodicity with the total stride, and the per-layer profile."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from shiftlab.equivariance import equivariance
from shiftlab.invariance import InvarianceResult, invariance
from shiftlab.shiftsets import ShiftSet
from shiftlab.study.schema import Periodicity
from shiftlab.training import evaluate

__all__ = ["measure_model", "periodicity", "accuracy_by_distance", "profile_shifts", "circular_shifts"]


def profile_shifts(stride: int, size: int) -> ShiftSet:
    """Shifts for the per-layer profile on ``size x size`` images: aligned at every stage (1, 2,
    4, ... S), odd ones, and the largest multiple of S up to ``size / 2`` (circularly, centred
    objects then wrap across the border, where the padding matters)."""
    pairs = {(0, 0), (0, 1), (1, 0), (1, 1), (2, 3)}
    s = 2
    while s <= stride:
        pairs |= {(0, s), (s, 0), (s, s)}
        s *= 2
    big = max(stride, (size // 2) // stride * stride)
    pairs |= {(0, big), (big, big)}
    return ShiftSet.from_list(sorted(pairs))


def circular_shifts(size: tuple[int, int], n: int, seed: int = 0) -> ShiftSet:
    """``(0, 0)`` and ``n - 1`` distinct random shifts covering one full period ``[0, H) x [0, W)``."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    order = torch.randperm(h * w - 1, generator=gen)[: max(0, min(n, h * w) - 1)] + 1
    pairs = [(0, 0)] + [(int(k) // w, int(k) % w) for k in order]
    return ShiftSet(torch.tensor(pairs, dtype=torch.float64), label=f"random circular({n}, seed={seed})")


def periodicity(res: InvarianceResult, stride: int) -> Periodicity:
    """Agreement with the unshifted prediction (``res.clean_consistency_by_shift``), grouped by
    the shift modulo ``stride``."""
    offsets = torch.tensor(res.shifts, dtype=torch.long)
    agree = torch.tensor(res.clean_consistency_by_shift, dtype=torch.float64)  # [S]
    residues = offsets.remainder(stride)
    table = torch.full((stride, stride), float("nan"), dtype=torch.float64)
    for ry in range(stride):
        for rx in range(stride):
            sel = (residues[:, 0] == ry) & (residues[:, 1] == rx)
            if sel.any():
                table[ry, rx] = agree[sel].mean()
    aligned = table[0, 0]
    others = table.flatten()[1:]
    others = others[~others.isnan()]
    row = (offsets[:, 0] == 0).nonzero()[:, 0]
    row = row[offsets[row, 1].argsort()]
    return Periodicity(
        stride=stride,
        residue_agreement=[[None if v != v else float(v) for v in r] for r in table.tolist()],  # NaN -> None
        aligned=float(aligned),
        unaligned=float(others.mean()) if others.numel() else None,
        dx_values=offsets[row, 1].tolist(),
        agreement_by_dx=agree[row].tolist(),
    )


def accuracy_by_distance(res: InvarianceResult) -> list[float]:
    """Mean accuracy at each Chebyshev distance ``max(|dy|, |dx|)`` = list index."""
    if res.accuracy_by_shift is None:
        raise ValueError("accuracy by distance needs labels")
    offsets = torch.tensor(res.shifts, dtype=torch.float64)
    dist = offsets.abs().max(dim=1).values.round().long()
    acc = torch.tensor(res.accuracy_by_shift, dtype=torch.float64)
    return [float(acc[dist == d].mean()) for d in range(int(dist.max()) + 1)]


def measure_model(
    model: nn.Module,
    test_images: Tensor,
    test_labels: Tensor,
    eval_images: Tensor,
    eval_labels: Tensor,
    *,
    max_shift: int,
    stride: int,
    n_circular: int,
    n_profile: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """All measurements of the study for one model (the ``RunRecord`` fields after training).

    Shape:
        - test_images, eval_images: ``(N, C, H, W)`` centred canvases; labels ``(N,)``
    """
    canvas = invariance(model, eval_images, eval_labels, shifts=ShiftSet.grid(max_shift), mode="zeros", progress=progress)
    circ = invariance(model, eval_images, eval_labels, shifts=circular_shifts(tuple(eval_images.shape[-2:]), n_circular), mode="circular")
    profile = equivariance(model, eval_images[:n_profile], shifts=profile_shifts(stride, min(eval_images.shape[-2:])),
                           mode="circular")
    return {
        "test_accuracy": evaluate(model, test_images, test_labels),
        "canvas": canvas.to_dict(),
        "circular": circ.to_dict(),
        "accuracy_by_distance": accuracy_by_distance(canvas),
        "periodicity": periodicity(canvas, stride),
        "equivariance": profile.to_dict(),
    }
