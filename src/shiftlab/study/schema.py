"""The format of a study's ``results.json``: what the runner writes and the report reads.

A run directory holds ``config.json``, ``results.json``, ``results.csv``, ``checkpoints/``,
``figures/`` (PNG and SVG) and ``report.html``. ``results.json`` is a :class:`StudyResults`.
All numbers are plain floats (JSON-safe); ``None`` where undefined.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["SCHEMA_VERSION", "StudyResults", "RunRecord", "Periodicity", "StudyMeta"]

SCHEMA_VERSION = 1


class Periodicity(TypedDict):
    """Agreement with the unshifted prediction by residue of the shift modulo the total stride S.

    ``residue_agreement[ry][rx]`` (None where no shift has that residue) = mean over images and over the canvas shifts ``d`` with
    ``d mod S = (ry, rx)`` of ``[c(T_d x) = c(x)]``; ``aligned`` is the value at residue (0, 0)
    (shifts that are multiples of S), ``unaligned`` the mean over the other residues.
    ``agreement_by_dx`` is the agreement at ``(0, dx)`` for ``dx`` in ``dx_values``.
    """

    stride: int
    residue_agreement: list[list[float | None]]
    aligned: float
    unaligned: float | None
    dx_values: list[int]
    agreement_by_dx: list[float]


class RunRecord(TypedDict):
    """One trained model (architecture x condition x seed) and its measurements.

    - ``canvas``: :meth:`shiftlab.InvarianceResult.to_dict` under canvas translation ("zeros"
      shifts of the centred canvas, every position in ``[-m, m]^2``, m = config.max_shift), so
      ``accuracy_by_shift`` is the accuracy heatmap, row-major over ``shifts``.
    - ``circular``: the same under circular shifts (a seeded random sample over the full period).
    - ``equivariance``: :meth:`shiftlab.EquivarianceResult.to_dict` (per-layer profile).
    - ``accuracy_by_distance``: accuracy against Chebyshev distance ``max(|dy|, |dx|)`` = index.
    """

    model: str
    condition: str  # "centred" (objects always centred in training) | "augmented" (random translation)
    seed: int
    params: int
    total_stride: int
    train_seconds: float
    history: list[dict]
    test_accuracy: float  # centred test accuracy on the whole test split
    canvas: dict
    circular: dict
    accuracy_by_distance: list[float]
    periodicity: Periodicity
    equivariance: dict


class StudyMeta(TypedDict):
    """Provenance: dataset, canvas, hardware and timing."""

    dataset: str
    n_train: int
    n_test: int
    n_eval: int  # images used for the shift measurements
    object_size: list[int]  # the images' H, W
    object_extent: list[int]  # the largest content box of an image (e.g. 20x20 for MNIST digits)
    canvas_size: list[int]
    max_shift: int
    classes: list[str]
    hardware: str
    torch_version: str
    shiftlab_version: str
    started: str  # ISO 8601
    seconds: float  # wall time of the whole study


class StudyResults(TypedDict):
    """Top level of ``results.json``. ``config`` is the StudyConfig as a dict."""

    schema_version: int
    config: dict
    meta: StudyMeta
    runs: list[RunRecord]
