"""The per-layer equivariance profile of a study cell, averaged over its seeds
(``docs/definitions.md``, "Aligned error", "Unaligned error", "Interior error").

A run records one profile (:meth:`shiftlab.EquivarianceResult.to_dict`, circular shifts); this
module reads it back as typed rows and finds the layers the claims ask about: the first stride-1
convolution, the downsampling layers, the global pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shiftlab.study.results import StudyResults

__all__ = ["LayerSummary", "errors_at_shifts", "layer_profile", "profile_runs"]

_ERRORS = ("aligned_error", "unaligned_error", "aligned_interior_error", "unaligned_interior_error")


def _num(value: object) -> float | None:
    """A saved error: None, a number, or "inf"/"nan" as written by ``json_safe``."""
    if value is None:
        return None
    v = float(value)  # type: ignore[arg-type]
    return None if math.isnan(v) else v


@dataclass(frozen=True)
class LayerSummary:
    """One layer of a cell's profile; errors are means over the cell's seeds (None: not measured).

    ``stride`` is the layer's total stride (input size / output size per axis); ``downsampling``:
    the total stride grows here by an integer factor (the layer decimates); ``global_pool``: the
    output is 1 x 1.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    stride: tuple[float, float]
    aligned_error: float | None
    unaligned_error: float | None
    aligned_interior_error: float | None
    unaligned_interior_error: float | None
    downsampling: bool
    global_pool: bool


def profile_runs(results: StudyResults, model: str, condition: str) -> list[dict[str, Any]]:
    """The per-layer profiles (`RunRecord.equivariance`) of the cell's runs that recorded one."""
    return [r.equivariance for r in results.main_runs
            if r.model == model and r.condition == condition and r.equivariance]


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def layer_profile(results: StudyResults, model: str, condition: str) -> list[LayerSummary]:
    """The cell's layers in execution order (empty when no run recorded a profile)."""
    profiles = profile_runs(results, model, condition)
    if not profiles:
        return []
    rows: list[LayerSummary] = []
    previous = (1.0, 1.0)
    for i, layer in enumerate(profiles[0]["layers"]):
        same = [p["layers"][i] for p in profiles if len(p["layers"]) > i and p["layers"][i]["name"] == layer["name"]]
        stride = (float(layer["stride"][0]), float(layer["stride"][1]))
        shape = tuple(int(s) for s in layer["shape"])
        pool = len(shape) == 3 and shape[1:] == (1, 1)
        grows = all(s.is_integer() for s in stride) and stride != previous and all(
            s >= p for s, p in zip(stride, previous, strict=True))
        rows.append(LayerSummary(
            name=str(layer["name"]), kind=str(layer["kind"]), shape=shape, stride=stride,
            **{k: _mean([_num(entry.get(k)) for entry in same]) for k in _ERRORS},
            downsampling=grows and not pool, global_pool=pool))
        if all(s.is_integer() for s in stride):
            previous = stride
    return rows


def errors_at_shifts(results: StudyResults, model: str, condition: str, layer: str, multiple_of: int) -> tuple[
        list[float], list[float]]:
    """A layer's errors over the cell's seeds at the non-zero profile shifts that are / are not
    multiples of ``multiple_of`` (in both axes): ``(at multiples, at other shifts)``."""
    at: list[float] = []
    other: list[float] = []
    for eq in profile_runs(results, model, condition):
        row = next((entry for entry in eq["layers"] if entry["name"] == layer), None)
        if row is None:
            continue
        for (dy, dx), err in zip(eq["shifts"], row["error_by_shift"], strict=True):
            v = _num(err)
            if v is None or (dy == 0 and dx == 0):
                continue
            (at if dy % multiple_of == 0 and dx % multiple_of == 0 else other).append(v)
    return at, other
