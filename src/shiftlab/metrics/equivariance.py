"""A torchmetrics metric of per-layer shift equivariance (``docs/metrics.md``; the definitions are
in ``docs/definitions.md``, "Equivariance metrics").

The states are the sums of :class:`~shiftlab.measure.layer_records.LayerAccumulator`, one row
per measured call site (and one for a dense 4-D model output): squared errors, squared
reference norms and interior counts ``[L, |S|]`` (float64, reduced by sum) and the range of the
reference outputs ``[L]`` (min and max). ``compute()`` rebuilds the
:class:`~shiftlab.measure.equivariance.EquivarianceStats` and hands them to
:func:`~shiftlab.measure.equivariance.equivariance_compute`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypedDict

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from shiftlab.measure.driver import BatchSize
from shiftlab.measure.equivariance import (
    EquivarianceResult,
    EquivarianceStats,
    equivariance_compute,
    equivariance_stats,
)
from shiftlab.measure.equivariance import LayerEquivariance as LayerRecord
from shiftlab.measure.layer_records import LayerAccumulator
from shiftlab.measure.shiftsets import ShiftSet, ShiftSpec, as_shift_set

from ._kwargs import MetricKwargs
from ._merge import check_same_arguments, check_same_shifts, check_state_shapes

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["LayerEquivarianceError"]

#: Per-shift sums of a layer, ``[L, |S|]`` states reduced by sum.
_SUMS = LayerAccumulator.SUMS
#: The fields of a layer's record that ``compute()`` can return (floats, or None -> NaN).
FIELDS = tuple(f.name for f in dataclass_fields(LayerRecord) if f.name.endswith(("_error", "_error_max")))


class _MeasureOptions(TypedDict):
    """The keyword arguments of :func:`~shiftlab.measure.equivariance.equivariance_stats` that a
    :class:`LayerEquivarianceError` measures every batch with (``metric.options``)."""

    shifts: ShiftSet
    mode: str
    layers: Sequence[str] | None
    border: int | None
    batch_size: BatchSize
    crop_size: tuple[int, int] | None


class LayerEquivarianceError(Metric):
    """Per-layer equivariance errors of a model, accumulated over batches: the numbers
    :func:`shiftlab.equivariance` gives for all the images seen (since the last ``reset``, on
    every process), to float rounding.

    The states need the model's layers before any update (so that every process holds the
    same states, even one that never updates), so the metric is built for a model and an
    example input: one measurement of ``example_input[:1]`` lists the call sites, their map
    shapes and interior bands. The model is not kept (not a submodule, not an attribute).

    Args:
        model: the model that every ``update`` will measure (the same layers).
        example_input: ``[n, C, H, W]``, images of the size ``update`` will get (the first is
            used).
        shifts, mode, layers, border, batch_size, crop_size: as for :func:`shiftlab.equivariance`.
        fields: the per-layer errors ``compute()`` returns, as ``{"<layer>/<field>": scalar}``
            (a loggable dict; NaN where undefined); ``None``: the whole
            :class:`~shiftlab.EquivarianceResult` (with ``origins``, ``first_break``, ...).
            One of :data:`FIELDS` each.
        kwargs: torchmetrics' own (``dist_sync_on_step``, ``process_group``, ...; typed, so a type
            checker refuses a misspelt or mistyped one).

    ``update(model, images)`` measures ``model`` on the batch ``images [B, C, H, W]`` (in eval
    mode under ``torch.inference_mode``, left exactly as it was) and adds its sums; a model whose
    layers differ from those the metric was built for is refused.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), nn.MaxPool2d(2))
        >>> net, x = net.double().eval(), torch.randn(4, 1, 8, 8, dtype=torch.float64)
        >>> metric = LayerEquivarianceError(net, x, shifts=1, fields=["unaligned_error"])
        >>> metric.update(net, x[:1]); metric.update(net, x[1:])
        >>> sorted(metric.compute())
        ['0/unaligned_error', '1/unaligned_error']
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0
    # States read by name here (``add_state`` registers them all; declared for type checkers).
    peak_lo: Tensor
    peak_hi: Tensor
    n_images: Tensor

    def __init__(self, model: nn.Module, example_input: Tensor, shifts: ShiftSpec = 2, *, mode: str = "circular",
                 layers: Sequence[str] | None = None, border: int | None = None, batch_size: BatchSize = 64,
                 crop_size: tuple[int, int] | None = None,
                 fields: Sequence[str] | None = ("aligned_error", "unaligned_error"),
                 **kwargs: Unpack[MetricKwargs]) -> None:
        super().__init__(**kwargs)
        unknown = [f for f in fields or () if f not in FIELDS]
        if unknown or isinstance(fields, str):
            raise ValueError(f"fields must be a list of {', '.join(FIELDS)} (or None for the whole result), "
                             f"got {fields!r}")
        self.fields = None if fields is None else tuple(fields)
        self.options: _MeasureOptions = {"shifts": as_shift_set(shifts, None, mode), "mode": mode, "layers": layers,
                                         "border": border, "batch_size": batch_size, "crop_size": crop_size}
        if not isinstance(example_input, Tensor) or example_input.dim() != 4:
            raise ValueError("example_input must be images [n, C, H, W] of the size update() will get")
        with warnings.catch_warnings():  # the sites do not depend on the model's mode: no "training mode" warning
            warnings.simplefilter("ignore", UserWarning)
            self.layout = equivariance_stats(model, example_input[:1], **self.options)  # sites, shapes; sums unused
        rows, n_shifts = len(self._rows(self.layout)), len(self.options["shifts"])
        for name in _SUMS:
            self.add_state(name, torch.zeros(rows, n_shifts, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("peak_lo", torch.full((rows,), math.inf, dtype=torch.float64), dist_reduce_fx="min")
        self.add_state("peak_hi", torch.full((rows,), -math.inf, dtype=torch.float64), dist_reduce_fx="max")
        self.add_state("n_images", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def merge_state(self, incoming_state: dict[str, Any] | Metric) -> None:
        """Add another metric's states (or a dict of them); a ``ValueError`` naming the difference,
        before anything is added, when they do not add up: another mode, crop, border, shift set
        or layers (issue 21, case 16)."""
        if isinstance(incoming_state, LayerEquivarianceError):
            mine, theirs = self.options, incoming_state.options
            check_same_arguments(self, ((what, mine[what], theirs[what]) for what in ("mode", "crop_size", "border", "layers")))
            check_same_shifts(self, mine["shifts"], theirs["shifts"])
            incoming = {name: getattr(incoming_state, name) for name in incoming_state._defaults}
        else:
            incoming = incoming_state if isinstance(incoming_state, dict) else {}
        check_state_shapes(self, incoming, "other layers or shift sets")
        super().merge_state(incoming_state)

    @staticmethod
    def _rows(stats: EquivarianceStats) -> list[LayerAccumulator]:
        """The accumulators in state order: the layers in execution order, then the output's."""
        return list(stats.layers.values()) + ([stats.output] if stats.output is not None else [])

    def update(self, model: nn.Module, images: Tensor) -> None:
        """Measure ``model`` on ``images [B, C, H, W]`` and add the per-layer sums."""
        stats = equivariance_stats(model, images, **self.options)
        got = [(r.name, r.shape, r.border) for r in self._rows(stats)]
        want = [(r.name, r.shape, r.border) for r in self._rows(self.layout)]
        if got != want or stats.input_shape != self.layout.input_shape:
            raise ValueError(f"the model's layers on these images differ from those the metric was built for "
                             f"(input {stats.input_shape} vs {self.layout.input_shape}; layers {got} vs {want}); "
                             "build the metric with this model and an example of these images")
        rows = self._rows(stats)
        for name in _SUMS:
            setattr(self, name, getattr(self, name) + torch.stack([getattr(r, name) for r in rows]).to(self.device))
        lo = torch.tensor([r.peak_lo for r in rows], dtype=torch.float64, device=self.device)
        hi = torch.tensor([r.peak_hi for r in rows], dtype=torch.float64, device=self.device)
        self.peak_lo, self.peak_hi = torch.minimum(self.peak_lo, lo), torch.maximum(self.peak_hi, hi)
        self.n_images = self.n_images + stats.n_images

    def statistics(self) -> EquivarianceStats:
        """The states as :class:`~shiftlab.measure.equivariance.EquivarianceStats` (this
        process's, or every process's inside ``compute`` and ``sync_context``)."""
        rows = []
        for i, template in enumerate(self._rows(self.layout)):
            acc = replace(template, peak_lo=float(self.peak_lo[i]), peak_hi=float(self.peak_hi[i]))
            for name in _SUMS:
                setattr(acc, name, getattr(self, name)[i].detach().cpu())
            rows.append(acc)
        n_layers = len(self.layout.layers)
        layers = dict(zip(self.layout.layers, rows[:n_layers], strict=True))
        return replace(self.layout, n_images=int(self.n_images), layers=layers,
                       output=rows[n_layers] if self.layout.output is not None else None)

    def compute(self) -> dict[str, Tensor] | EquivarianceResult:
        """``{"<layer>/<field>": float64 scalar}`` for the chosen ``fields`` (NaN before any
        image, or where the layer has no shift of that kind), or the whole result
        (``fields=None``; ``ValueError`` before any image)."""
        if self.fields is None:
            return equivariance_compute(self.statistics())
        if int(self.n_images) == 0:
            names = [r.name for r in self.layout.layers.values()]
            return {f"{name}/{f}": self._scalar(None) for name in names for f in self.fields}
        result = equivariance_compute(self.statistics())
        return {f"{layer.name}/{f}": self._scalar(getattr(layer, f)) for layer in result.layers for f in self.fields}

    def _scalar(self, value: float | None) -> Tensor:
        return torch.tensor(math.nan if value is None else value, dtype=torch.float64, device=self.device)
