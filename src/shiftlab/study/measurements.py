"""Measure one trained model of the study: per-image shift statistics on the canvas, the
aliasing signature, the per-layer profile (``docs/definitions.md``; ``docs/study.md``, "Measurement").

Per-image statistics are what the paired bootstrap resamples (:mod:`shiftlab.stats`): every model
is measured on the same images and shifts, so an image's values line up across models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from shiftlab.data.dataset import class_interleaved
from shiftlab.measure.driver import Chunk, check_inputs, run_chunks
from shiftlab.measure.equivariance import equivariance
from shiftlab.measure.invariance import consistency_from_predictions, invariance
from shiftlab.measure.runner import model_device
from shiftlab.measure.runner_factory import make_runner
from shiftlab.measure.shiftsets import ShiftSet
from shiftlab.measure.validation import check_finite_output, check_labels
from shiftlab.study.records import ExplorerRecord, Periodicity, ShiftProfile, pack_uint8
from shiftlab.study.shift_bits import ShiftBits

__all__ = ["DISTANCE_BANDS", "EXPLORER_IMAGES", "IMAGE_METRICS", "SHIFT_SETS", "CanvasMeasurement", "DistanceBand",
           "correct_per_image", "explore", "explorer_images", "image_statistics", "kind_distances", "layer_profile",
           "measure_canvas", "periodicity", "probe_correct", "profile_shifts", "study_shifts"]

#: Evaluation images that the shift explorer records per run (:func:`explorer_images`; ``docs/explorer.md``).
EXPLORER_IMAGES = 16

@dataclass(frozen=True)
class DistanceBand:
    """Shifts whose distance ``max(|dy|, |dx|)`` lies in ``[low, high]`` px; ``name`` is ``d<low>``
    or ``d<low>_<high>`` (``docs/definitions.md``, "Distance bands")."""

    low: int
    high: int

    @property
    def name(self) -> str:
        return f"d{self.low}" if self.low == self.high else f"d{self.low}_{self.high}"

    @property
    def label(self) -> str:
        """``"1 px"``, ``"2-3 px"``."""
        return f"{self.low} px" if self.low == self.high else f"{self.low}-{self.high} px"


#: The distance bands agreement and accuracy are reported in (the total stride 8 a band of its own).
DISTANCE_BANDS = tuple(DistanceBand(lo, hi) for lo, hi in ((1, 1), (2, 3), (4, 5), (6, 7), (8, 8), (9, 10)))

#: The per-image statistics of a canvas measurement (``docs/definitions.md``). Each is a mean of
#: 0/1 indicators over a set of shifts; ``consistency_correct`` is NaN for images misclassified
#: at the centre (conditional consistency).
IMAGE_METRICS = (
    "consistency",          # sum_k (n_k / |S|)^2
    "consistency_correct",  # consistency, only for images correct at the centre (else NaN)
    "agreement",            # clean consistency: P_d[c(T_d x) = c(x)]
    "accuracy",             # mean accuracy over the shifts
    "correct_centre",       # correct at d = 0
    "worst_case",           # correct at every shift
    "aligned",              # agreement with c(x) at the non-zero multiples of the total stride
    "unaligned",            # agreement at the shifts that are not multiples of it
    "aliasing_gap",         # aligned - unaligned (the aliasing signature, paired within each image)
    "flip_rate",            # P[c(T_d x) != c(T_{d+e} x)], unit steps e inside the set
    "agreement_in",         # agreement at shifts within the training range R (max(|dy|, |dx|) <= R)
    "agreement_beyond",     # agreement at shifts beyond R
    "accuracy_in",
    "accuracy_beyond",
    "aligned_at_stride",    # agreement at the non-zero multiples of S at distance S (max(|dy|, |dx|) = S)
    "unaligned_at_stride",  # agreement at the other shifts at distance S
    "aliasing_gap_matched",  # aligned_at_stride - unaligned_at_stride: the distance-matched aliasing signature
    *(f"{kind}_{band.name}" for kind in ("agreement", "accuracy") for band in DISTANCE_BANDS),
)

#: Shift sets of :func:`study_shifts`: ``matched`` (the third study design: unaligned shifts at the
#: aligned ones' distance) and ``residues`` (the published second design, for its results).
SHIFT_SETS = ("matched", "residues")


def study_shifts(stride: int, max_shift: int, in_range: int, shift_set: str = "matched") -> ShiftSet:
    """The study's canvas shift set: every residue modulo ``stride``, the distance range, and (in
    the ``matched`` set) unaligned shifts at the aligned ones' distance.

    Both sets hold a core grid ``[-c, c]^2`` with ``c = max(stride // 2, in_range)`` (every residue
    ``(dy mod S, dx mod S)`` and every unit step around the centre) and the diagonals ``(+-S, +-S)``
    when ``S <= max_shift``. Beyond the grid:

    - ``matched``: the axis shifts ``(0, +-d)``, ``(+-d, 0)`` for every ``d`` from ``c + 2`` to
      ``max_shift``, and on the ring at distance ``S`` (``max(|dy|, |dx|) = S``) the unaligned
      shifts ``(+-S, +-S/2)``, ``(+-S/2, +-S)``, ``(+-S, +-1)``, ``(+-1, +-S)``: 16 unaligned
      shifts at exactly the distance of the 8 aligned ones, so the aliasing signature can be
      read at equal distance (``aliasing_gap_matched``). MNIST's 48x48 canvas (S = 8, max shift
      10, R = 4): 81 + 20 + 4 + 16 = 121 shifts.
    - ``residues`` (the second study design, kept to describe its published results): the axis
      shifts for ``d = c + 2, c + 4, ...`` and every multiple of ``S`` up to ``max_shift``:
      81 + 12 + 4 = 97 shifts.

    Example:
        >>> len(study_shifts(8, 10, 4)), len(study_shifts(8, 10, 4, "residues"))
        (121, 97)
    """
    if shift_set not in SHIFT_SETS:
        raise ValueError(f"shift_set must be one of {SHIFT_SETS}, got {shift_set!r}")
    c = max(stride // 2, in_range)
    if c > max_shift:
        raise ValueError(f"the canvas allows shifts up to {max_shift} px, fewer than the {c} px the "
                         f"shift set needs (stride {stride}, training range {in_range}); use a larger canvas")
    pairs = {(dy, dx) for dy in range(-c, c + 1) for dx in range(-c, c + 1)}
    if shift_set == "matched":
        far = set(range(c + 2, max_shift + 1))
    else:
        far = set(range(c + 2, max_shift + 1, 2)) | set(range(stride, max_shift + 1, stride))
    for d in sorted(far):
        if d > c:
            pairs |= {(0, d), (0, -d), (d, 0), (-d, 0)}
    if stride <= max_shift:
        pairs |= {(stride, stride), (stride, -stride), (-stride, stride), (-stride, -stride)}
        if shift_set == "matched" and stride > 1:
            for off in sorted({stride // 2, 1}):
                pairs |= {(a * stride, b * off) for a in (1, -1) for b in (1, -1)}
                pairs |= {(b * off, a * stride) for a in (1, -1) for b in (1, -1)}
    return ShiftSet.from_list(sorted(pairs, key=lambda p: (max(abs(p[0]), abs(p[1])), p)))


def kind_distances(shifts: Tensor, stride: int) -> tuple[float, float]:
    """Mean distance ``max(|dy|, |dx|)`` in px of the non-zero multiples of ``stride`` (the aligned
    shifts) and of the other shifts (the unaligned) in ``shifts``, NaN for a kind the set lacks. In
    :func:`study_shifts` the multiples lie farther out than most other shifts, so a model whose
    agreement falls with distance agrees less at the multiples without any aliasing
    (``docs/definitions.md``, "Aligned and unaligned agreement").

    Shape:
        - shifts: ``(|S|, 2)`` integer-valued

    Example:
        >>> kind_distances(study_shifts(8, 10, 4, "residues").offsets, 8)
        (8.0, 3.4545454545454546)
    """
    offsets = shifts.round().long()
    aligned = _aligned(offsets, stride)
    dist = offsets.abs().max(dim=1).values.to(torch.float64)
    return tuple(float(dist[m].mean()) if bool(m.any()) else float("nan")  # type: ignore[return-value]
                 for m in (aligned, ~aligned & (offsets != 0).any(dim=1)))


def _aligned(offsets: Tensor, stride: int) -> Tensor:
    """Which integer shifts ``(|S|, 2)`` are non-zero multiples of ``stride`` on both axes. ``(|S|,)`` bool."""
    return (offsets.remainder(stride) == 0).all(dim=1) & (offsets != 0).any(dim=1)


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


@dataclass
class CanvasMeasurement:
    """A model measured under canvas translations.

    Attributes:
        per_image: :data:`IMAGE_METRICS` -> ``(N,)`` float64 array.
        profile: means over images at every shift.
        periodicity: the aliasing signature (agreement by residue modulo the total stride).
        bits: per image and shift, agreement with the centred prediction and correctness.
    """

    per_image: dict[str, np.ndarray]
    profile: ShiftProfile
    periodicity: Periodicity
    bits: ShiftBits


def _mean_over(hits: Tensor, columns: Tensor) -> Tensor:
    """Row means of ``hits[:, columns]``; NaN when ``columns`` is empty. ``(N, S) -> (N,)``."""
    if not bool(columns.any()):
        return torch.full((hits.shape[0],), float("nan"), dtype=torch.float64)
    return hits[:, columns].to(torch.float64).mean(dim=1)


def image_statistics(predictions: Tensor, labels: Tensor, shifts: Tensor, *, n_classes: int, stride: int,
                     in_range: int) -> dict[str, np.ndarray]:
    """The per-image statistics of :data:`IMAGE_METRICS` from a prediction table.

    Shape:
        - predictions: ``(N, |S|)`` int64 top-1 classes, column ``j`` at shift ``shifts[j]``
        - labels: ``(N,)``; shifts: ``(|S|, 2)`` integer-valued, containing ``(0, 0)``
        - output: name -> ``(N,)`` float64
    """
    offsets = shifts.round().long()
    zero = ((offsets == 0).all(dim=1)).nonzero()
    if zero.numel() != 1:
        raise ValueError("the shift set must contain (0, 0) exactly once")
    centre = predictions[:, int(zero[0, 0])]
    agree = predictions == centre[:, None]
    correct = predictions == labels[:, None]
    multiple = _aligned(offsets, stride)
    nonzero = (offsets != 0).any(dim=1)
    dist = offsets.abs().max(dim=1).values
    inside, beyond = dist <= in_range, dist > in_range
    index = {tuple(o): j for j, o in enumerate(offsets.tolist())}
    pairs = [(j, index[(dy + ey, dx + ex)]) for j, (dy, dx) in enumerate(offsets.tolist())
             for ey, ex in ((0, 1), (1, 0)) if (dy + ey, dx + ex) in index]
    consistency = consistency_from_predictions(predictions, n_classes)
    correct_centre = correct[:, int(zero[0, 0])]
    if pairs:
        a, b = torch.tensor(pairs).T
        flips = (predictions[:, a] != predictions[:, b]).to(torch.float64).mean(dim=1)
    else:
        flips = torch.full((predictions.shape[0],), float("nan"), dtype=torch.float64)
    aligned, unaligned = _mean_over(agree, multiple), _mean_over(agree, ~multiple & nonzero)
    ring = dist == stride
    aligned_ring, unaligned_ring = _mean_over(agree, multiple & ring), _mean_over(agree, ~multiple & ring)
    bands = {f"{kind}_{band.name}": _mean_over(hits, (dist >= band.low) & (dist <= band.high))
             for kind, hits in (("agreement", agree), ("accuracy", correct)) for band in DISTANCE_BANDS}
    stats = {
        "consistency": consistency,
        "consistency_correct": torch.where(correct_centre, consistency, torch.tensor(float("nan"), dtype=torch.float64)),
        "agreement": agree.to(torch.float64).mean(dim=1),
        "accuracy": correct.to(torch.float64).mean(dim=1),
        "correct_centre": correct_centre.to(torch.float64),
        "worst_case": correct.all(dim=1).to(torch.float64),
        "aligned": aligned,
        "unaligned": unaligned,
        "aliasing_gap": aligned - unaligned,
        "flip_rate": flips,
        "agreement_in": _mean_over(agree, inside),
        "agreement_beyond": _mean_over(agree, beyond),
        "accuracy_in": _mean_over(correct, inside),
        "accuracy_beyond": _mean_over(correct, beyond),
        "aligned_at_stride": aligned_ring,
        "unaligned_at_stride": unaligned_ring,
        "aliasing_gap_matched": aligned_ring - unaligned_ring,
        **bands,
    }
    return {k: v.numpy() for k, v in stats.items()}


def periodicity(shifts: Tensor, agreement: Tensor, stride: int) -> Periodicity:
    """Agreement with the unshifted prediction grouped by the shift modulo ``stride``.

    Shape: shifts ``(|S|, 2)``, agreement ``(|S|,)`` (mean over images at each shift).
    """
    offsets = shifts.round().long()
    residues = offsets.remainder(stride)
    table: list[list[float | None]] = []
    for ry in range(stride):
        row: list[float | None] = []
        for rx in range(stride):
            sel = (residues[:, 0] == ry) & (residues[:, 1] == rx) & (offsets != 0).any(dim=1)
            row.append(float(agreement[sel].mean()) if sel.any() else None)
        table.append(row)
    on_row = (offsets[:, 0] == 0).nonzero()[:, 0]
    on_row = on_row[offsets[on_row, 1].argsort()]
    return Periodicity(stride=stride, residue_agreement=table, dx_values=offsets[on_row, 1].tolist(),
                       agreement_by_dx=[float(v) for v in agreement[on_row]])


def measure_canvas(model: nn.Module, images: Tensor, labels: Tensor, *, shifts: ShiftSet, n_classes: int,
                   stride: int, in_range: int, progress: Callable[[int, int], None] | None = None) -> CanvasMeasurement:
    """Measure ``model`` at every shift of ``shifts`` of the centred canvases ``images`` (zero fill).

    Shape:
        - images: ``(N, C, H, W)`` centred canvases; labels ``(N,)``
    """
    res = invariance(model, images, labels, shifts=shifts, mode="zeros", keep_predictions=True, progress=progress)
    table = res.predictions
    assert table is not None, "invariance(keep_predictions=True) keeps the predictions"
    offsets = torch.tensor(res.shifts, dtype=torch.float64)
    per_image = image_statistics(table, labels, offsets, n_classes=n_classes, stride=stride, in_range=in_range)
    agreement = torch.tensor(res.clean_consistency_by_shift, dtype=torch.float64)
    profile = ShiftProfile(shifts=[[int(round(a)), int(round(b))] for a, b in res.shifts],
                           accuracy=list(res.accuracy_by_shift or []), agreement=agreement.tolist())
    return CanvasMeasurement(per_image, profile, periodicity(offsets, agreement, stride),
                             ShiftBits.from_predictions(table, labels, offsets))


def explorer_images(labels: Tensor, n: int = EXPLORER_IMAGES) -> Tensor:
    """Indices of ``n`` images that cover the classes, in class-interleaved order
    (:func:`shiftlab.data.dataset.class_interleaved`).

    Shape: labels ``(N,)`` -> ``(min(n, N),)`` int64.

    Example:
        >>> explorer_images(torch.tensor([0, 0, 0, 1, 1, 2]), 4).tolist()
        [0, 3, 5, 1]
    """
    return torch.from_numpy(class_interleaved(labels)[:n])


def explore(model: nn.Module, images: Tensor, labels: Tensor, *, radius: int, n_images: int = EXPLORER_IMAGES,
            batch_size: int = 256) -> ExplorerRecord:
    """What the shift explorer shows (``docs/explorer.md``): for ``n_images`` of the evaluation
    canvases ``images`` that cover the classes (:func:`explorer_images`), the top-1 class of
    ``model`` and its softmax probability at every position ``(dy, dx)`` of ``[-radius, radius]^2``
    (zero-filled moves of the canvas, as :func:`measure_canvas` makes them), and the canvases.

    On a canvas whose margin is at least ``radius`` every position moves the whole object; the
    study uses its canvas's max shift, so the square holds every shift of :func:`study_shifts`
    and the classes there are the ones the study's statistics count.

    Shape:
        - images: ``(N, C, H, W)`` centred canvases, pixel values in ``[0, 1]``; labels ``(N,)``
        - result: :class:`~shiftlab.study.records.ExplorerRecord`, tables
          ``(n, (2 radius + 1)^2)`` with ``n = min(n_images, N)``

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.AdaptiveMaxPool2d(1), nn.Flatten()).eval()
        >>> rec = explore(net, torch.rand(4, 1, 12, 12), torch.tensor([0, 0, 2, 2]), radius=2, n_images=3)
        >>> rec.images, rec.class_table().shape, rec.positions()[:2].tolist()
        ([0, 2, 1], (3, 25), [[-2, -2], [-2, -1]])
    """
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be an int >= 0, got {radius!r}")
    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise ValueError(f"n_images must be an int >= 1, got {n_images!r}")
    shift_set = ShiftSet.grid(radius)
    in_hw = check_inputs(images, shift_set, mode="zeros", batch_size=batch_size, crop_size=None)
    labels = check_labels(labels, images.shape[0])
    chosen = explorer_images(labels, n_images)
    images, labels = images[chosen.to(images.device)], labels[chosen.to(labels.device)]
    if float(images.min()) < 0.0 or float(images.max()) > 1.0:
        raise ValueError("explore() records the canvases as 8-bit pixels: give images with values in [0, 1]")
    n, p = images.shape[0], len(shift_set)
    classes = torch.empty(n, p, dtype=torch.long)
    probability = torch.empty(n, p, dtype=torch.float64)

    def forward(out: object, batch: int) -> Tensor:
        if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != batch:
            raise ValueError(f"explore() needs a classifier whose output is [N, classes], got "
                             f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}")
        if out.shape[1] > 256:
            raise ValueError(f"explore() records classes as 8-bit values: at most 256 classes, the model has "
                             f"{out.shape[1]}")
        check_finite_output(out)
        return out.detach().to("cpu", torch.float64)

    def on_chunk(chunk: Chunk) -> None:
        top = chunk.outputs.softmax(dim=2).max(dim=2)  # [s, n]
        rows = slice(chunk.start, chunk.start + chunk.n)
        classes[rows, chunk.shift_index] = top.indices.T
        probability[rows, chunk.shift_index] = top.values.T

    run_chunks(make_runner(model), images, shift_set, mode="zeros", batch_size=batch_size, crop_size=None,
               in_hw=in_hw, forward=forward, on_chunk=on_chunk)
    pixels = (images.detach().to("cpu", torch.float64) * 255).round().to(torch.uint8)
    return ExplorerRecord(
        radius=radius, canvas_shape=list(images.shape), images=chosen.tolist(), labels=labels.tolist(),
        classes=pack_uint8(classes.to(torch.uint8).numpy()),
        confidence=pack_uint8((probability * 255).round().to(torch.uint8).numpy()),
        pixels=pack_uint8(pixels.numpy()))


def layer_profile(model: nn.Module, images: Tensor, stride: int) -> dict:
    """The per-layer equivariance profile under circular shifts (:func:`shiftlab.measure.equivariance`).

    Shape: images ``(n, C, H, W)``.
    """
    size = min(images.shape[-2:])
    return equivariance(model, images, shifts=profile_shifts(stride, size), mode="circular").to_dict()


def probe_correct(model: nn.Module, images: Tensor, labels: Tensor) -> np.ndarray:
    """Per-image accuracy of the position probe: the mean over an image's two placements.

    Shape: images ``(2N, C, H, W)`` and labels ``(2N,)`` from
    :func:`shiftlab.study.conditions.probe_eval_set` -> ``(N,)``.
    """
    hits = correct_per_image(model, images, labels)
    n = hits.shape[0] // 2
    return (hits[:n] + hits[n:]) / 2


def correct_per_image(model: nn.Module, images: Tensor, labels: Tensor) -> np.ndarray:
    """``1.0`` where ``model`` classifies an image right, else ``0.0``. ``(N, C, H, W) -> (N,)``."""
    device = model_device(model)
    with torch.inference_mode():
        preds = torch.cat([model(chunk.to(device)).argmax(dim=1).cpu() for chunk in images.split(256)])
    return (preds == labels).to(torch.float64).numpy()
