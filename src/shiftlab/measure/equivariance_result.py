"""What :func:`shiftlab.measure.equivariance` returns (``docs/definitions.md``, "Equivariance
metrics" and "Where it breaks"): the per-layer profile :class:`EquivarianceResult`, one
:class:`LayerEquivariance` per measured layer, the :class:`SkippedLayer` entries, and the rules
that read it: :meth:`LayerEquivariance.diagnose` (boundary, aliasing), :meth:`EquivarianceResult.origins`
(each layer ``breaks here`` when it clearly adds error: more than :data:`INHERIT_FACTOR` times
the largest error measured before it at some shift, else ``inherited``) and
:meth:`EquivarianceResult.resolution_jumps` (maps resized outside any module).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from shiftlab.io import json_safe

__all__ = ["DEGENERATE_CONSTANT_SHARE", "INHERIT_FACTOR", "EquivarianceResult", "LayerEquivariance", "ResolutionJump",
           "SkippedLayer", "constant_output_reason"]

#: A broken layer counts as adding error (``breaks here``) only when, at some shift, its full or
#: interior error exceeds this many times the largest error of that kind measured at that shift by
#: any earlier layer (errors at or below the tolerance count as none); otherwise its error is
#: ``inherited``. Relative errors drift by tens of percent through layers that add nothing (a ReLU
#: halves the norm of the map and of its error unevenly, a global pool averages the error down);
#: a new source of error (a padding, a subsampling) typically multiplies the error at the
#: shifts it affects by far more, or appears where there was none.
INHERIT_FACTOR = 1.5

#: Share of a dense output's maps (one per image and channel) that are constant at or above which
#: the output counts as near-constant (``docs/definitions.md``, "Degenerate predictions"), as a
#: classifier does with this share of its predictions in one class. A constant map has nothing
#: that could move: the shifted output matches it wherever the model keeps it constant, so its
#: pixels dilute the EQ-T's mean squared error (by ``1 - share`` when they add no error: 10 dB at
#: 0.9). When every map is constant EQ-T is undefined (``output_eq_t_db`` is NaN).
DEGENERATE_CONSTANT_SHARE = 0.9



@dataclass
class LayerEquivariance:
    """Equivariance errors of one layer (relative L2; None where no shift of that kind exists).

    ``input_stride``: the stride of the map the layer was called on (None when its first input is
    not a 4-D map); ``resized_outside_modules``: True when no module called before it, and not the
    model's input, produced a map of that size, so a functional op in ``forward`` (``F.max_pool2d``,
    ``F.interpolate``, slicing) resized it (:meth:`EquivarianceResult.resolution_jumps`).
    """

    name: str
    kind: str
    shape: tuple[int, int, int]
    stride: tuple[int, int]
    border: int
    aligned_error: float | None
    aligned_error_max: float | None
    unaligned_error: float | None
    unaligned_error_max: float | None
    aligned_interior_error: float | None
    unaligned_interior_error: float | None
    error_by_shift: list[float] = field(repr=False)
    interior_error_by_shift: list[float | None] = field(repr=False)
    input_stride: tuple[int, int] | None = None
    resized_outside_modules: bool = False

    def worst(self, interior: bool = False) -> float:
        """Largest error of the layer over all shifts (full map, or interior)."""
        vals = self.interior_error_by_shift if interior else self.error_by_shift
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else 0.0

    def diagnose(self, tol: float = 1e-6) -> str:
        """Why the layer breaks equivariance: ``equivariant``, ``boundary``, ``aliasing``,
        ``boundary+aliasing`` or ``not equivariant``.

        Boundary: aligned full error above ``tol`` but the interior error under half of it.
        Aliasing: unaligned interior error above ``tol`` and more than twice the aligned interior error.
        """
        if self.worst() <= tol:
            return "equivariant"
        causes = []
        a_full, a_in = self.aligned_error or 0.0, self.aligned_interior_error
        if a_full > tol and a_in is not None and a_in < 0.5 * a_full:
            causes.append("boundary")
        u = self.unaligned_interior_error if self.unaligned_interior_error is not None else self.unaligned_error
        if u is not None and u > tol and u > 2 * (a_in or 0.0):
            causes.append("aliasing")
        return "+".join(causes) if causes else "not equivariant"


@dataclass
class SkippedLayer:
    """A module whose output is not a 4-D map; it has no spatial equivariance to measure."""

    name: str
    kind: str
    output: str


@dataclass
class ResolutionJump:
    """The stride changes from ``before`` (the output of layer ``previous``, or ``"(input)"``) to
    ``after`` (the input of layer ``layer``) with no module in between that explains it."""

    previous: str
    layer: str
    before: tuple[int, int]
    after: tuple[int, int]

    def describe(self) -> str:
        """One line, e.g. ``stride jumps from 1 to 2 between 0 and 1: downsampling outside modules (functional op?)``."""
        what = "downsampling" if all(a >= b for a, b in zip(self.after, self.before, strict=True)) else "resizing"
        return (f"stride jumps from {_stride_text(self.before)} to {_stride_text(self.after)} between {self.previous} "
                f"and {self.layer}: {what} outside modules (functional op in forward?)")


def _stride_text(stride: tuple[int, int]) -> str:
    return "x".join(str(s) for s in dict.fromkeys(stride))


@dataclass
class EquivarianceResult:
    """Per-layer equivariance profile, in execution order.

    A model with a dense 4-D output also gets ``output_eq_t_db`` (StyleGAN3's EQ-T of the output,
    in dB; None for any other output) and its caution (``docs/definitions.md``, "Degenerate
    predictions"): ``output_constant_share``, the share of the output's maps (one per image and
    channel) that are constant, and ``degenerate``: None, or one sentence saying why EQ-T means
    little (:func:`constant_output_reason`). EQ-T is NaN, undefined, when every map is constant
    (it is not perfect: a constant map has nothing to move), and ``inf`` when a varying output
    is matched exactly. :meth:`output_eq_t_text` says which, for printing.
    """

    mode: str
    shift_set: str
    shifts: list[tuple[float, float]]
    input_shape: tuple[int, int, int]
    n_images: int
    layers: list[LayerEquivariance]
    skipped: list[SkippedLayer]
    output_eq_t_db: float | None = None
    batch_size: int | None = None
    device: str | None = None
    output_constant_share: float | None = None
    degenerate: str | None = None

    def output_eq_t_text(self) -> str | None:
        """EQ-T of the dense output for a reader: ``"18.83 dB"``, ``"inf dB (exactly equivariant)"``
        or ``"undefined (constant output)"``; None without a dense output.

        Example:
            >>> r = EquivarianceResult("circular", "grid(1)", [], (1, 8, 8), 2, [], [], math.nan)
            >>> r.output_eq_t_text()
            'undefined (constant output)'
        """
        eq_t = self.output_eq_t_db
        if eq_t is None:
            return None
        if math.isnan(eq_t):
            return "undefined (constant output)"
        return "inf dB (exactly equivariant)" if eq_t == math.inf else f"{eq_t:.2f} dB"

    def first_break(self, tol: float = 1e-6, *, interior: bool = False) -> LayerEquivariance | None:
        """The first layer, in execution order, whose error (full or interior) exceeds ``tol``."""
        for layer in self.layers:
            if layer.worst(interior) > tol:
                return layer
        return None

    def origins(self, tol: float = 1e-6, factor: float = INHERIT_FACTOR) -> list[str]:
        """Where each layer's error comes from, in execution order (``docs/definitions.md``, "Where it breaks").

        A layer *adds* error at a shift when its full or interior error there exceeds ``tol`` and
        ``factor`` times the largest error of the same kind (full or interior) at that shift over
        every earlier layer (errors at or below ``tol`` count as none). Labels:

        - ``equivariant``: the layer's largest full error is at most ``tol``;
        - ``breaks here: <cause>``: it adds error somewhere (the first break always does). The
          cause is :meth:`LayerEquivariance.diagnose` kept to what the layer adds: ``boundary``
          when it adds full error at a non-zero aligned shift, ``aliasing`` when it adds interior
          error (full error where the interior is empty) at an unaligned shift; ``not
          equivariant`` when neither part of the diagnosis is added;
        - ``inherited``: its errors are not clearly larger than what reached it, so they were
          carried in from earlier layers, not caused there. :meth:`LayerEquivariance.diagnose`
          of such a layer describes the error it carries, not where that error was made.

        Example:
            >>> import torch
            >>> from torch import nn
            >>> from shiftlab import equivariance
            >>> _ = torch.manual_seed(0)
            >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), nn.MaxPool2d(2), nn.ReLU())
            >>> res = equivariance(net.double().eval(), torch.randn(4, 1, 8, 8, dtype=torch.float64), shifts=1)
            >>> res.origins(1e-9)
            ['equivariant', 'breaks here: aliasing', 'inherited']
        """
        n = len(self.shifts)
        before = {False: [0.0] * n, True: [0.0] * n}  # largest error above tol so far, per shift
        labels = []
        for layer in self.layers:
            full, inner = layer.error_by_shift, layer.interior_error_by_shift
            if layer.worst() <= tol:
                labels.append("equivariant")
            else:
                adds_full = [_adds(e, b, tol, factor) for e, b in zip(full, before[False], strict=True)]
                adds_in = [_adds(e, b, tol, factor) for e, b in zip(inner, before[True], strict=True)]
                if not any(adds_full) and not any(adds_in):
                    labels.append("inherited")
                else:
                    aligned = [_is_aligned(d, layer.stride) for d in self.shifts]
                    nonzero = [d != (0, 0) for d in self.shifts]
                    added = {
                        "boundary": any(a and z and f for a, z, f in zip(aligned, nonzero, adds_full, strict=True)),
                        "aliasing": any(not a and (i if e is not None else f)
                                        for a, i, f, e in zip(aligned, adds_in, adds_full, inner, strict=True)),
                    }
                    causes = [c for c in layer.diagnose(tol).split("+") if added.get(c)]
                    labels.append("breaks here: " + ("+".join(causes) or "not equivariant"))
            for interior, errs in ((False, full), (True, inner)):
                before[interior] = [e if e is not None and e > tol and e > b else b
                                    for e, b in zip(errs, before[interior], strict=True)]
        return labels

    def resolution_jumps(self) -> list[ResolutionJump]:
        """The layers whose input was resized outside any module, with the stride before and after."""
        jumps = []
        for i, layer in enumerate(self.layers):
            if layer.resized_outside_modules and layer.input_stride is not None:
                previous = self.layers[i - 1] if i else None
                jumps.append(ResolutionJump(previous.name if previous else "(input)", layer.name,
                                            previous.stride if previous else (1, 1), layer.input_stride))
        return jumps

    def layer(self, name: str) -> LayerEquivariance:
        """The record of the layer named ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no measured layer named {name!r}; measured: {[layer.name for layer in self.layers]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: infinite values (EQ-T of an exact layer, the error of a layer whose
        reference output is all zero) are written as the strings ``"inf"``/``"-inf"``, and an
        undefined EQ-T (a constant output) as ``"nan"``, with ``degenerate`` saying why. Each layer
        has its ``diagnosis`` (:meth:`LayerEquivariance.diagnose`) and ``origin``
        (:meth:`origins`), both at the default tolerance."""
        origins = self.origins()
        return json_safe({
            "mode": self.mode,
            "shift_set": self.shift_set,
            "shifts": [list(s) for s in self.shifts],
            "input_shape": list(self.input_shape),
            "n_images": self.n_images,
            "output_eq_t_db": self.output_eq_t_db,
            "output_constant_share": self.output_constant_share,
            "degenerate": self.degenerate,
            "layers": [
                {**vars(layer), "shape": list(layer.shape), "stride": list(layer.stride), "diagnosis": layer.diagnose(),
                 "origin": origin}
                for layer, origin in zip(self.layers, origins, strict=True)
            ],
            "resolution_jumps": [vars(j) for j in self.resolution_jumps()],
            "skipped": [vars(s) for s in self.skipped],
            "batch_size": self.batch_size,
            "device": self.device,
        })


def _adds(error: float | None, before: float, tol: float, factor: float) -> bool:
    """Whether ``error`` is clearly larger than the largest ``before`` it (:meth:`EquivarianceResult.origins`)."""
    return error is not None and error > tol and (before <= 0 or error > factor * before)


def _is_aligned(shift: tuple[float, float], stride: tuple[int, int]) -> bool:
    """Whether ``shift`` is a whole number of ``stride`` steps on both axes (to rounding)."""
    return all(abs(d / s - round(d / s)) < 1e-9 for d, s in zip(shift, stride, strict=True))


def constant_output_reason(constant_share: float | None, n_maps: int) -> str | None:
    """Why the EQ-T of a dense output means little, in one sentence, or None: at least
    :data:`DEGENERATE_CONSTANT_SHARE` of its ``n_maps`` maps (one per image and channel) are
    constant (``docs/definitions.md``, "Degenerate predictions").

    Example:
        >>> constant_output_reason(1.0, 4)[:58]
        'all 4 output maps (one per image and channel) are constant'
        >>> constant_output_reason(0.5, 4) is None
        True
    """
    if constant_share is None or constant_share < DEGENERATE_CONSTANT_SHARE:
        return None
    if constant_share == 1.0:
        what = (f"all {n_maps} output maps (one per image and channel) are constant, so EQ-T is undefined: a "
                "constant map has nothing that could move, whatever the model does with shifts")
    else:
        what = (f"{100 * constant_share:.0f}% of the {n_maps} output maps (one per image and channel) are constant: "
                "a constant map has nothing that could move, so EQ-T mostly measures maps with nothing in them "
                f"(they dilute its mean squared error, raising EQ-T by up to {-10 * math.log10(1 - constant_share):.0f} "
                "dB)")
    return what + ". Measure on images the model responds to (e.g. text for a text detector)."
