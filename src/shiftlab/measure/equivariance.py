"""Per-layer shift equivariance of any model (``docs/definitions.md``, "Equivariance metrics").

For every module whose output is a 4-D map ``[N, C_l, H_l, W_l]``, in execution order, with stride
``s_l = (H / H_l, W / W_l)`` inferred from shapes:

- **aligned error** at shifts ``d`` with ``s_l | d``: ``||f_l(T_d x) - T_{d / s_l} f_l(x)|| / ||f_l(x)||``;
- **unaligned error** at other ``d``: the same against the band-limited fractional shift
  ``T_{d / s_l} f_l(x)``, the response of an ideal alias-free layer;
- **interior errors**: the same over pixels at least ``b`` from the border in both maps (wrapped,
  filled and border-band pixels masked, as StyleGAN3 masks wrapped pixels); ``b`` defaults to the
  receptive-field radius at layer resolution.

Errors are relative L2 norms pooled over the images, averaged over the non-zero shifts of each
kind. Full >> interior means boundary (padding) effects; interior unaligned >> interior aligned
means aliasing. Modules with other outputs are listed as skipped. A model with a dense 4-D output
also gets EQ-T in dB (StyleGAN3) over its output with wrapped/filled pixels masked.

Where equivariance breaks (``docs/definitions.md``, "Where it breaks"): an error measured at a
layer is either added there or carried in from its input. :meth:`EquivarianceResult.origins`
labels each layer ``breaks here`` (it clearly adds error: more than :data:`INHERIT_FACTOR` times
the largest error measured before it at some shift) or ``inherited``;
:meth:`EquivarianceResult.resolution_jumps` finds maps resized outside any module.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from shiftlab.io import json_safe
from shiftlab.measure.distributed import all_or_none, local_module
from shiftlab.measure.driver import BatchSize, ProgressFn, RunInfo, check_inputs, measure_sharded, run_chunks
from shiftlab.measure.layer_records import LayerAccumulator, chain_stride, layer_offsets, layer_stride
from shiftlab.measure.onnx_graph import GraphLayer, OnnxGraph
from shiftlab.measure.onnx_runner import OnnxRunner
from shiftlab.measure.runner import Measuring, TorchRunner, make_runner
from shiftlab.measure.shiftsets import ShiftSet, ShiftSpec, as_shift_set

__all__ = ["INHERIT_FACTOR", "EquivarianceResult", "EquivarianceStats", "LayerEquivariance", "ResolutionJump",
           "SkippedLayer", "equivariance", "equivariance_compute", "equivariance_stats"]

K = TypeVar("K")
V = TypeVar("V")

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

#: A broken layer counts as adding error (``breaks here``) only when, at some shift, its full or
#: interior error exceeds this many times the largest error of that kind measured at that shift by
#: any earlier layer (errors at or below the tolerance count as none); otherwise its error is
#: ``inherited``. Relative errors drift by tens of percent through layers that add nothing (a ReLU
#: halves the norm of the map and of its error unevenly, a global pool averages the error down);
#: a new source of error (a padding, a subsampling) typically multiplies the error at the
#: shifts it affects by far more, or appears where there was none.
INHERIT_FACTOR = 1.5


def _none_if_nan(v: float) -> float | None:
    return None if math.isnan(v) else v


def _mean_max(values: Tensor) -> tuple[float | None, float | None]:
    values = values[~values.isnan()]
    if values.numel() == 0:
        return None, None
    return float(values.mean()), float(values.max())


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
    """Per-layer equivariance profile, in execution order."""

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
        reference output is all zero) are written as the strings ``"inf"``/``"-inf"``. Each layer
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


def _kernel_radius(module: nn.Module) -> int:
    """Half-width of a leaf module's spatial window, in its input pixels (0 for pointwise ops)."""
    k = getattr(module, "kernel_size", None) or getattr(module, "filt_size", None)
    if k is None:
        return 0
    k = max(k) if isinstance(k, (tuple, list)) else int(k)
    d = getattr(module, "dilation", 1)
    d = max(d) if isinstance(d, (tuple, list)) else int(d)
    return math.ceil((k - 1) / 2) * d


def _unknown_layers(unknown: list[str], known: list[str]) -> ValueError:
    return ValueError(f"unknown layer name(s) {unknown}; the model has: {known[:20]}{' ...' if len(known) > 20 else ''}")


def _selected_modules(model: nn.Module, layers: Sequence[str] | None) -> dict[nn.Module, str]:
    named = dict(model.named_modules())
    if layers is None:
        if not any(True for _ in model.children()):
            return {model: type(model).__name__}  # a bare layer: measure the layer itself
        return {m: name for name, m in named.items() if name and not isinstance(m, _CONTAINERS)}
    unknown = [name for name in layers if name not in named or name == ""]
    if unknown:
        raise _unknown_layers(unknown, [n for n in named if n])
    return {named[name]: name for name in layers}


def _selected_maps(graph: OnnxGraph, layers: Sequence[str] | None) -> tuple[dict[GraphLayer, str], list[SkippedLayer]]:
    """The layer maps of an ONNX graph to measure (by name), and the selected nodes without one."""
    if layers is not None:
        unknown = [name for name in layers if name not in graph.layer_names()]
        if unknown:
            raise _unknown_layers(unknown, graph.layer_names())
    chosen = (lambda name: True) if layers is None else set(layers).__contains__
    return ({layer: layer.name for layer in graph.layers if chosen(layer.name)},
            [SkippedLayer(name, kind, desc) for name, kind, desc in graph.others if chosen(name)])


class _Recorder:
    """Per-layer hooks (forward hooks on modules, or an ONNX runner's layer maps) that accumulate
    errors per call site and track the receptive field."""

    def __init__(self, selected: dict[object, str], offsets: Tensor, in_hw: tuple[int, int], mode: str, border: int | None):
        self.selected, self.offsets, self.in_hw, self.mode, self.border = selected, offsets, in_hw, mode, border
        self.records: dict[str, LayerAccumulator] = {}
        self.skipped: dict[str, SkippedLayer] = {}
        self.n = 0
        self.shift_index = torch.empty(0, dtype=torch.long)
        self.calls: dict[str, int] = {}
        self.radius = 0.0  # receptive-field radius in input pixels, accumulated in execution order
        self.sizes: set[tuple[int, int]] = {in_hw}  # map sizes produced so far in the pass (the input's too)
        #: the stride of each map size seen (relative to the input), multiplied step by step
        self.strides: dict[tuple[int, int], tuple[int, int]] = {in_hw: (1, 1)}
        self.inputs: dict[str, tuple[tuple[int, int] | None, bool]] = {}  # site -> (input stride, resized outside)

    def start(self, n: int, shift_index: Tensor) -> None:
        self.n, self.shift_index, self.calls, self.radius = n, shift_index, {}, 0.0
        self.sizes = {self.in_hw}

    def _site(self, name: str) -> str:
        k = self.calls.get(name, 0)
        self.calls[name] = k + 1
        return name if k == 0 else f"{name}[{k}]"

    def hook(self, module: nn.Module, inputs: tuple[object, ...], output: object) -> None:
        """Forward hook of a module (every module is hooked; the selected ones are recorded)."""
        x = inputs[0] if inputs and isinstance(inputs[0], Tensor) and inputs[0].dim() == 4 else None
        if x is not None and not any(True for _ in module.children()):
            self.radius += _kernel_radius(module) * self.in_hw[0] / x.shape[-2]
        self._see(module, type(module).__name__, (x.shape[-2], x.shape[-1]) if x is not None else None, output)

    def map_hook(self, layer: GraphLayer, output: Tensor, source_hw: tuple[int, int] | None) -> None:
        """An ONNX runner's layer map (every map is handed over; the selected ones are recorded)."""
        if source_hw is not None:
            self.radius += layer.radius * self.in_hw[0] / source_hw[0]
        self._see(layer, layer.kind, source_hw, output)

    def output_hook(self, output: object) -> None:
        """An ONNX runner's output (for the recorder of ``(output)``)."""
        self._see(_OUTPUT, "output", None, output)

    def _stride(self, source_hw: tuple[int, int] | None, out_hw: tuple[int, int]) -> tuple[int, int]:
        """The stride of a map of size ``out_hw``: the first stride found for that size, from the
        layer's input map when its size is known (:func:`chain_stride`), else from the network
        input's size (:func:`layer_stride`)."""
        if out_hw not in self.strides:
            if source_hw is not None and source_hw in self.strides:
                self.strides[out_hw] = chain_stride(self.strides[source_hw], source_hw, out_hw)
            else:
                self.strides[out_hw] = layer_stride(self.in_hw, out_hw)
        return self.strides[out_hw]

    def _see(self, key: object, kind: str, source_hw: tuple[int, int] | None, output: object) -> None:
        known = set(self.sizes)
        if isinstance(output, Tensor) and output.dim() == 4:
            self.sizes.add((output.shape[-2], output.shape[-1]))
            self._stride(source_hw, (output.shape[-2], output.shape[-1]))
        name = self.selected.get(key)
        if name is None:
            return
        site = self._site(name)
        if site not in self.inputs:
            hw = source_hw
            self.inputs[site] = (self._stride(None, hw) if hw else None, hw is not None and hw not in known)
        if not isinstance(output, Tensor) or output.dim() != 4:
            desc = f"shape (N, {', '.join(map(str, output.shape[1:]))})" if isinstance(output, Tensor) else type(output).__name__
            self.skipped.setdefault(site, SkippedLayer(site, kind, desc))
            return
        if not output.is_floating_point():
            raise TypeError(f"layer {site!r} outputs {output.dtype}; shiftlab needs floating-point outputs (logits or "
                            "feature maps): return them before any rounding or argmax")
        record = self.records.get(site)
        shape = (output.shape[1], output.shape[2], output.shape[3])
        if record is None:
            stride = self._stride(source_hw, shape[1:])
            b = math.ceil(self.radius / stride[0] - 1e-9) if self.border is None else math.ceil(self.border / stride[0])
            record = LayerAccumulator(site, kind, shape, self.in_hw, b,
                                      layer_offsets(self.offsets, self.in_hw, shape[1:], stride), self.mode, stride)
            self.records[site] = record
        elif record.shape != shape:
            raise ValueError(
                f"the output shape of {site!r} changed between forward passes ({record.shape} vs {shape}); "
                "shiftlab needs layer shapes that do not depend on the shift or the input content"
            )
        if output.shape[0] != self.n * (1 + len(self.shift_index)):
            raise ValueError(f"{site!r} changed the batch size; per-layer equivariance needs batch-preserving layers")
        record.add(output.detach(), self.n, self.shift_index)


#: The key of a runner's output in the recorder of ``(output)`` (an ONNX graph's output).
_OUTPUT = "(output)"


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
        shifts=stats.shift_set.as_tuples(),
        input_shape=stats.input_shape,
        n_images=stats.n_images,
        layers=[_summarise(r, stats.inputs.get(site, (None, False))) for site, r in stats.layers.items()],
        skipped=list(stats.skipped.values()),
        output_eq_t_db=stats.output.eq_t_db() if stats.output is not None else None,
    )


def _measure(runner: TorchRunner | OnnxRunner, images: Tensor, shift_set: ShiftSet, *, mode: str, layers: Sequence[str] | None,
             border: int | None, batch_size: BatchSize, crop_size: tuple[int, int] | None, in_hw: tuple[int, int],
             progress: ProgressFn | None) -> tuple[EquivarianceStats, RunInfo]:
    """Run ``runner`` on ``images [n, C, H, W]`` at every shift with the per-layer hooks: the statistics."""
    if isinstance(runner, OnnxRunner):
        selected, skipped = _selected_maps(runner.graph, layers)
        recorder = _Recorder(dict(selected), shift_set.offsets, in_hw, mode, border)
        root = _Recorder({_OUTPUT: "(output)"}, shift_set.offsets, in_hw, mode, 0)
        recorder.skipped.update({s.name: s for s in skipped})

        def hooks(session: Measuring) -> None:
            session.watch(recorder.map_hook, root.output_hook)  # type: ignore[attr-defined]
    else:
        model = runner.model
        recorder = _Recorder(dict(_selected_modules(model, layers)), shift_set.offsets, in_hw, mode, border)
        root = _Recorder({model: "(output)"}, shift_set.offsets, in_hw, mode, 0)

        def hooks(session: Measuring) -> None:
            for module in set(model.modules()) - ({model} - set(recorder.selected)):
                session.forward_hook(module, recorder.hook)
            session.forward_hook(model, root.hook)

    def before_pass(n: int, shift_index: Tensor) -> None:
        recorder.start(n, shift_index)
        root.start(n, shift_index)

    run = run_chunks(runner, images, shift_set, mode=mode, batch_size=batch_size, crop_size=crop_size, in_hw=in_hw,
                     reference_in_every_pass=True, before_pass=before_pass, session=hooks, progress=progress)
    stats = EquivarianceStats(mode, shift_set, (images.shape[1], *in_hw), images.shape[0], recorder.records,
                              recorder.inputs, recorder.skipped, root.records.get("(output)"))
    return stats, run


def equivariance(
    model: nn.Module | str | os.PathLike[str],
    images: Tensor,
    *,
    shifts: ShiftSpec = 2,
    mode: str = "circular",
    layers: Sequence[str] | None = None,
    border: int | None = None,
    batch_size: BatchSize = 64,
    crop_size: tuple[int, int] | None = None,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
) -> EquivarianceResult:
    """Measure the equivariance of every layer of ``model`` under a set of shifts.

    Args:
        model: any ``nn.Module`` taking ``[B, C, H, W]``; run in eval mode under
            ``torch.inference_mode`` and left exactly as it was (modes, hooks, parameters, device).
            Or an ONNX model (``docs/onnx.md``): the path of an ``.onnx`` file or an
            ``onnxruntime.InferenceSession``, whose layers are the graph's 4-D maps, named by
            node, ``kind`` the op type.
        images: ``[N, C, H, W]`` floating point.
        shifts: int ``m`` (all of ``[-m, m]^2``), a list of ``(dy, dx)`` or a ``ShiftSet``; fractional allowed.
        mode: ``"circular"``, ``"zeros"``, ``"fourier"``, or ``"crop"`` (with ``crop_size``; the
            reference is then a zero-filled shift and the interior errors are the meaningful ones).
        layers: module paths to measure (``["features.3"]``; ONNX: node names); default every
            non-container module (every layer map).
        border: interior band in *input* pixels (scaled to each layer); default the receptive-field radius.
        batch_size: images per forward pass, reference and shifted copies included (each pass
            holds the unshifted images and up to 7 shifts of each), or ``"auto"``.
        crop_size: ``(h, w)`` for ``mode="crop"``.
        device: where to run (``"cpu"``, ``"cuda"``, ``"auto"``); default the model's device.
        progress: called as ``progress(done, total)`` after each forward pass.

    Returns:
        :class:`EquivarianceResult` with ``.layers`` in execution order, ``.skipped``,
        ``.first_break(tol)``, ``.origins(tol)`` and ``.resolution_jumps()``. It is
        :func:`equivariance_compute` of the :class:`EquivarianceStats` of the run; under an
        initialised ``torch.distributed`` process group each rank measures its shard of the
        images and the statistics are added over the ranks (``docs/distributed.md``).

    Shape:
        - images: ``(N, C, H, W)``
        - each measured layer output: ``(N, C_l, H_l, W_l)``

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.MaxPool2d(2))
        >>> net = net.double().eval()
        >>> res = equivariance(net, torch.randn(4, 1, 8, 8, dtype=torch.float64), shifts=[(0, 0), (2, 2), (1, 0)])
        >>> res.first_break(1e-9).name
        '2'
    """
    with all_or_none():
        runner, shift_set, in_hw = _prepare(model, images, shifts, mode, layers, batch_size, crop_size, device)

        def measure(lo: int, hi: int, size: int | str) -> tuple[EquivarianceStats, RunInfo]:
            return _measure(runner, images[lo:hi], shift_set, mode=mode, layers=layers, border=border,
                            batch_size=size, crop_size=crop_size, in_hw=in_hw, progress=progress)

        total, used_batch, used_device = measure_sharded(
            "equivariance", runner, images, measure, batch_size=batch_size, mode=mode, crop_size=crop_size,
            shifts=shift_set.offsets, arguments=(mode, layers, border, batch_size, crop_size))
    assert total is not None  # rank 0 always has images
    result = equivariance_compute(total)
    result.batch_size, result.device = used_batch, used_device  # type: ignore[assignment]
    return result


def equivariance_stats(
    model: nn.Module | str | os.PathLike[str],
    images: Tensor,
    *,
    shifts: ShiftSpec = 2,
    mode: str = "circular",
    layers: Sequence[str] | None = None,
    border: int | None = None,
    batch_size: BatchSize = 64,
    crop_size: tuple[int, int] | None = None,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
) -> EquivarianceStats:
    """The :class:`EquivarianceStats` of ``model`` on all of ``images [N, C, H, W]``, in this
    process (no sharding): :func:`equivariance` without its last step. Statistics of other
    images, measured with the same arguments, add with ``+``; :func:`equivariance_compute` of
    the total is the result for all the images (to float rounding).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), nn.MaxPool2d(2)).double().eval()
        >>> x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
        >>> total = equivariance_stats(net, x[:1], shifts=1) + equivariance_stats(net, x[1:], shifts=1)
        >>> whole = equivariance(net, x, shifts=1)
        >>> abs(equivariance_compute(total).layers[1].unaligned_error - whole.layers[1].unaligned_error) < 1e-12
        True
    """
    runner, shift_set, in_hw = _prepare(model, images, shifts, mode, layers, batch_size, crop_size, device)
    return _measure(runner, images, shift_set, mode=mode, layers=layers, border=border, batch_size=batch_size,
                    crop_size=crop_size, in_hw=in_hw, progress=progress)[0]


def _prepare(model: object, images: Tensor, shifts: ShiftSpec, mode: str, layers: Sequence[str] | None,
             batch_size: BatchSize, crop_size: tuple[int, int] | None,
             device: str | torch.device | None) -> tuple[TorchRunner | OnnxRunner, ShiftSet, tuple[int, int]]:
    """Every check before the first pass: ``(runner, shift set, the model's input (h, w))``."""
    runner = make_runner(local_module(model), device)
    shift_set = as_shift_set(shifts, images, mode)
    in_hw = check_inputs(images, shift_set, mode=mode, batch_size=batch_size, crop_size=crop_size)
    if isinstance(runner, OnnxRunner):  # unknown layer names fail before any pass
        _selected_maps(runner.graph, layers)
    else:
        _selected_modules(runner.model, layers)
    return runner, shift_set, in_hw
