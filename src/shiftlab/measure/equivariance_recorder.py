"""The hooks of per-layer equivariance (``docs/definitions.md``, "Equivariance metrics"): which
layers are recorded (:func:`select_layers`), and :class:`LayerRecorder`, which hands each
recorded layer's output ``[(1 + s) n, C_l, H_l, W_l]`` of a pass to its
:class:`~shiftlab.measure.layer_records.LayerAccumulator` (one per call site), tracking the
receptive-field radius (the default interior band), each map's stride and the maps resized
outside modules. Torch models are hooked with forward hooks on their modules, ONNX models
through their runner's layer maps (:meth:`~shiftlab.measure.onnx_runner.OnnxMeasuring.watch`);
:class:`EquivarianceRecorder` holds the two recorders of a measurement (the layers and the
model's output).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from shiftlab.measure.equivariance_result import SkippedLayer
from shiftlab.measure.layer_records import LayerAccumulator, chain_stride, layer_offsets, layer_stride
from shiftlab.measure.onnx_graph import GraphLayer, OnnxGraph
from shiftlab.measure.onnx_runner import OnnxMeasuring, OnnxRunner
from shiftlab.measure.runner import Measuring, TorchRunner

__all__ = ["OUTPUT", "EquivarianceRecorder", "LayerRecorder", "LayerSelection", "select_layers"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


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


def _selected_modules(model: nn.Module, layers: Sequence[str] | None) -> dict[object, str]:
    named = dict(model.named_modules())
    if layers is None:
        if not any(True for _ in model.children()):
            return {model: type(model).__name__}  # a bare layer: measure the layer itself
        return {m: name for name, m in named.items() if name and not isinstance(m, _CONTAINERS)}
    unknown = [name for name in layers if name not in named or name == ""]
    if unknown:
        raise _unknown_layers(unknown, [n for n in named if n])
    return {named[name]: name for name in layers}


def _selected_maps(graph: OnnxGraph, layers: Sequence[str] | None) -> tuple[dict[object, str], list[SkippedLayer]]:
    """The layer maps of an ONNX graph to measure (by name), and the selected nodes without one."""
    if layers is not None:
        unknown = [name for name in layers if name not in graph.layer_names()]
        if unknown:
            raise _unknown_layers(unknown, graph.layer_names())
    chosen = (lambda name: True) if layers is None else set(layers).__contains__
    return ({layer: layer.name for layer in graph.layers if chosen(layer.name)},
            [SkippedLayer(name, kind, desc) for name, kind, desc in graph.others if chosen(name)])


@dataclass(frozen=True)
class LayerSelection:
    """The layers a measurement records (:func:`select_layers`): ``sites`` maps what is hooked (a
    module, or an ONNX graph's :class:`~shiftlab.measure.onnx_graph.GraphLayer`) to its name;
    ``skipped``: the selected ONNX nodes without a 4-D map, known before any pass."""

    sites: dict[object, str]
    skipped: tuple[SkippedLayer, ...] = ()


def select_layers(runner: TorchRunner | OnnxRunner, layers: Sequence[str] | None) -> LayerSelection:
    """The layers named ``layers`` (module paths, or ONNX node names), or by default every
    non-container module (every layer map); ``ValueError`` naming the unknown ones."""
    if isinstance(runner, OnnxRunner):
        sites, skipped = _selected_maps(runner.graph, layers)
        return LayerSelection(sites, tuple(skipped))
    return LayerSelection(_selected_modules(runner.model, layers))


class LayerRecorder:
    """Per-layer hooks (forward hooks on modules, or an ONNX runner's layer maps) that accumulate
    errors per call site and track the receptive field.

    Args:
        selected: what to record (a module, a graph layer, or :data:`OUTPUT`) -> its name.
        offsets: ``[S, 2]`` the input shifts.
        in_hw: the model's input ``(H, W)``.
        mode: the shift mode.
        border: the interior band in input pixels, or None for the receptive-field radius.
        track_constant: count each recorded map's constant reference maps (the model's output).
    """

    def __init__(self, selected: dict[object, str], offsets: Tensor, in_hw: tuple[int, int], mode: str,
                 border: int | None, track_constant: bool = False):
        self.selected, self.offsets, self.in_hw, self.mode, self.border = selected, offsets, in_hw, mode, border
        self.track_constant = track_constant
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
        self._see(OUTPUT, "output", None, output)

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
                                      layer_offsets(self.offsets, self.in_hw, shape[1:], stride), self.mode, stride,
                                      self.track_constant)
            self.records[site] = record
        elif record.shape != shape:
            raise ValueError(
                f"the output shape of {site!r} changed between forward passes ({record.shape} vs {shape}); "
                "shiftlab needs layer shapes that do not depend on the shift or the input content"
            )
        if output.shape[0] != self.n * (1 + len(self.shift_index)):
            raise ValueError(f"{site!r} changed the batch size; per-layer equivariance needs batch-preserving layers")
        record.add(output.detach(), self.n, self.shift_index)


#: The name of the model's output among the recorded sites (and the key of an ONNX graph's output).
OUTPUT = "(output)"


class EquivarianceRecorder:
    """The hooks of one per-layer measurement: a :class:`LayerRecorder` of the selected layers
    and one of the model's output (for the EQ-T of a dense 4-D output), started before each pass
    (:meth:`start`) and attached to the runner's session handle (:meth:`attach`): forward hooks on
    a torch model's modules, or an ONNX runner's layer-map hook."""

    def __init__(self, runner: TorchRunner | OnnxRunner, selection: LayerSelection, offsets: Tensor,
                 in_hw: tuple[int, int], mode: str, border: int | None) -> None:
        self.model = None if isinstance(runner, OnnxRunner) else runner.model
        self.layers = LayerRecorder(dict(selection.sites), offsets, in_hw, mode, border)
        self.layers.skipped.update({s.name: s for s in selection.skipped})
        self.output = LayerRecorder({OUTPUT if self.model is None else self.model: OUTPUT}, offsets, in_hw, mode, 0,
                                    track_constant=True)

    def start(self, n: int, shift_index: Tensor) -> None:
        """Before a pass of ``n`` images at the shifts ``shift_index`` (the reference first)."""
        self.layers.start(n, shift_index)
        self.output.start(n, shift_index)

    def attach(self, handle: Measuring | OnnxMeasuring) -> None:
        """Register the hooks through the session's handle (removed when the session ends)."""
        if isinstance(handle, OnnxMeasuring):
            handle.watch(self.layers.map_hook, self.output.output_hook)
            return
        assert self.model is not None  # a torch session
        for module in set(self.model.modules()) - ({self.model} - set(self.layers.selected)):
            handle.forward_hook(module, self.layers.hook)
        handle.forward_hook(self.model, self.output.hook)
