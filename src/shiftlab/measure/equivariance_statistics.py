"""Sufficient statistics of per-layer equivariance (``docs/definitions.md``, "Sufficient
statistics"): :class:`EquivarianceStats`, per call site the
:class:`~shiftlab.measure.layer_records.LayerAccumulator` sums over the images measured, which
add up (``+``) across blocks and processes, and :func:`equivariance_compute`, which turns them
into the :class:`~shiftlab.measure.equivariance_result.EquivarianceResult` (errors per shift,
their means and maxima over aligned and unaligned shifts, EQ-T of a dense output).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor

from shiftlab.measure.equivariance_result import (
    EquivarianceResult,
    LayerEquivariance,
    SkippedLayer,
    constant_output_reason,
)
from shiftlab.measure.layer_records import LayerAccumulator
from shiftlab.measure.shiftsets import ShiftSet

__all__ = ["EquivarianceStats", "equivariance_compute"]

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class EquivarianceStats:
    """Sufficient statistics of per-layer equivariance (``docs/definitions.md``, "Sufficient
    statistics"): per call site, the :class:`~shiftlab.measure.layer_records.LayerAccumulator`
    sums over the images measured, in execution order.

    ``a + b`` is the statistics of both sets of images (from blocks or processes; the sums add,
    the output's dynamic range is the union), for the same model, shifts, mode and input size.
    ``inputs``: per site, the stride of the layer's input and whether it was resized outside
    modules; ``skipped``: the layers without a 4-D map; ``output``: the sums of a dense 4-D model
    output (EQ-T), or None.
    """

    mode: str
    shift_set: ShiftSet
    input_shape: tuple[int, int, int]
    n_images: int
    layers: dict[str, LayerAccumulator]
    inputs: dict[str, tuple[tuple[int, int] | None, bool]]
    skipped: dict[str, SkippedLayer]
    output: LayerAccumulator | None = None

    def __add__(self, other: EquivarianceStats) -> EquivarianceStats:
        if (self.mode, self.input_shape, self.shift_set.label) != (other.mode, other.input_shape, other.shift_set.label) \
                or not torch.equal(self.shift_set.offsets, other.shift_set.offsets):
            raise ValueError("cannot add equivariance statistics of different measurements: "
                             f"mode {self.mode!r} vs {other.mode!r}, input {self.input_shape} vs {other.input_shape}, "
                             f"shifts {self.shift_set.label!r} vs {other.shift_set.label!r}")
        layers = {site: a + other.layers[site] if site in other.layers else a
                  for site, a in self.layers.items()}
        layers.update({site: b for site, b in other.layers.items() if site not in layers})
        output = (self.output if other.output is None else other.output if self.output is None
                  else self.output + other.output)
        return EquivarianceStats(self.mode, self.shift_set, self.input_shape, self.n_images + other.n_images, layers,
                                 _union(self.inputs, other.inputs), _union(self.skipped, other.skipped), output)


def _union(a: dict[K, V], b: dict[K, V]) -> dict[K, V]:
    """``a`` then the entries of ``b`` whose keys ``a`` lacks (execution order kept)."""
    return {**a, **{k: v for k, v in b.items() if k not in a}}


def _summarise(record: LayerAccumulator, inputs: tuple[tuple[int, int] | None, bool]) -> LayerEquivariance:
    full = record.relative_errors()
    inner = record.relative_errors(interior=True)
    nonzero = (record.offsets != 0).any(dim=1)
    aligned, unaligned = record.aligned & nonzero, ~record.aligned
    a_mean, a_max = _mean_max(full[aligned])
    u_mean, u_max = _mean_max(full[unaligned])
    return LayerEquivariance(
        name=record.name,
        kind=record.kind,
        shape=record.shape,
        stride=record.stride,
        border=record.border,
        aligned_error=a_mean,
        aligned_error_max=a_max,
        unaligned_error=u_mean,
        unaligned_error_max=u_max,
        aligned_interior_error=_mean_max(inner[aligned])[0],
        unaligned_interior_error=_mean_max(inner[unaligned])[0],
        error_by_shift=full.tolist(),
        interior_error_by_shift=[_none_if_nan(v) for v in inner.tolist()],
        input_stride=inputs[0],
        resized_outside_modules=inputs[1],
    )


def equivariance_compute(stats: EquivarianceStats) -> EquivarianceResult:
    """The :class:`EquivarianceResult` of accumulated statistics (layers in execution order)."""
    if stats.n_images == 0:
        raise ValueError("no images were measured: the statistics are empty")
    return EquivarianceResult(
        mode=stats.mode,
        shift_set=stats.shift_set.label,
        shifts=[(dy, dx) for dy, dx in stats.shift_set.as_tuples()],
        input_shape=stats.input_shape,
        n_images=stats.n_images,
        layers=[_summarise(r, stats.inputs.get(site, (None, False))) for site, r in stats.layers.items()],
        skipped=list(stats.skipped.values()),
        output_eq_t_db=stats.output.eq_t_db() if stats.output is not None else None,
        output_constant_share=stats.output.constant_share() if stats.output is not None else None,
        degenerate=_degenerate(stats.output),
    )


def _degenerate(output: LayerAccumulator | None) -> str | None:
    """The caution of a dense output (:func:`~shiftlab.measure.equivariance_result.constant_output_reason`)."""
    if output is None:
        return None
    maps_per_shift = int(output.maps.max()) if output.maps.numel() else 0  # each image and channel, once
    return constant_output_reason(output.constant_share(), maps_per_shift)



def _none_if_nan(v: float) -> float | None:
    return None if math.isnan(v) else v


def _mean_max(values: Tensor) -> tuple[float | None, float | None]:
    values = values[~values.isnan()]
    if values.numel() == 0:
        return None, None
    return float(values.mean()), float(values.max())
