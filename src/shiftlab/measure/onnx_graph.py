"""Read an ONNX graph for measurement (``docs/onnx.md``): its one image input, its layer maps,
and in-memory copies that expose intermediate tensors as extra outputs.

A *layer map* is a tensor that depends on the image input, has a floating type and rank 4 by
ONNX shape inference: the graph's counterpart of a module's 4-D output. It is named by its node
(or by the tensor, for unnamed nodes and nodes with several map outputs) and its *kind* is the
node's op type (``Conv``, ``MaxPool``, ``Relu``, ...). Nothing here modifies the user's file or
model: :func:`with_outputs` serialises a copy.

The per-layer profile holds a bounded number of layer maps at once: :func:`segments` cuts the
graph, in topological order, into consecutive pieces that each make at most ``maps_at_once``
layer maps, and :func:`segment_model` makes a piece a model of its own, whose inputs are the
tensors earlier pieces made and whose outputs are its layer maps and what later pieces read.
Run one after another, the pieces compute the graph once, as a single run would.

``onnx`` is imported inside the functions that need it (an optional dependency).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["GraphLayer", "ImageInput", "OnnxGraph", "Segment", "load_model", "read_graph", "require", "segment_model",
           "segments", "with_outputs"]

#: Ops whose output pixel sees a window of its input: their kernel half-width enters the
#: receptive-field radius (the interior band of ``docs/definitions.md``, "Equivariance metrics").
WINDOWED = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool")

#: Ops that only move data: they make no layer (see :func:`read_graph`).
MOVES = frozenset({"Pad", "Slice", "Concat", "Split", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gather",
                   "Expand", "Tile", "Identity", "Cast", "Flatten", "Shape"})

_INSTALL = {"onnx": "pip install onnx onnxruntime", "onnxruntime": "pip install onnxruntime (onnxruntime-gpu for CUDA)"}


def require(package: str) -> Any:
    """Import ``onnx`` or ``onnxruntime``, or raise ImportError with the pip command."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise ImportError(f"measuring an ONNX model needs {package}: {_INSTALL[package]}") from err


@dataclass(frozen=True)
class ImageInput:
    """The graph's image input ``[N, C, H, W]``: ``batch``, ``channels`` and ``hw`` are the fixed
    sizes (None where the dimension is dynamic); ``dtype`` the torch dtype of its element type."""

    name: str
    dtype: torch.dtype
    batch: int | None
    channels: int | None
    hw: tuple[int | None, int | None]

    def describe(self) -> str:
        dims = [self.batch, self.channels, *self.hw]
        return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


@dataclass(frozen=True)
class GraphLayer:
    """A layer map: ``tensor`` made by a node of type ``kind``; ``source``: the node's first
    input-dependent input before any padding; ``radius``: the half-width of the node's window in
    ``source`` pixels (0 for pointwise ops)."""

    name: str
    tensor: str
    kind: str
    source: str
    radius: int


@dataclass(frozen=True)
class OnnxGraph:
    """What measurement needs of an ONNX model (:func:`read_graph`).

    ``outputs``: the graph's outputs; ``result``: what a forward pass returns for invariance (the
    graph's outputs, except that a single ``[N, K]`` output made by ``Softmax`` over the class
    axis is replaced by the Softmax's input, the logits); ``layers``: the layer maps in
    topological order; ``others``: ``(name, kind, shape)`` of the nodes that depend on the input
    but make no 4-D map (a ``Flatten``, a ``Gemm``), listed as skipped; ``tensors``: every floating
    tensor that depends on the input (what a pass can hold); ``parameters``: the number of
    elements of the initializers.
    """

    model: Any
    input: ImageInput
    outputs: tuple[str, ...]
    result: tuple[str, ...]
    layers: tuple[GraphLayer, ...]
    others: tuple[tuple[str, str, str], ...]
    tensors: tuple[str, ...]
    parameters: int

    def sources(self) -> tuple[str, ...]:
        """The layers' sources that are neither a layer map nor the input (their sizes are needed)."""
        known = {layer.tensor for layer in self.layers} | {self.input.name}
        return tuple(dict.fromkeys(layer.source for layer in self.layers if layer.source not in known))

    def layer_names(self) -> list[str]:
        """Every name ``layers=`` accepts: the layer maps, then the nodes without one."""
        return [layer.name for layer in self.layers] + [name for name, _, _ in self.others]


def load_model(path: str | os.PathLike[str]) -> Any:
    """Read and check an ONNX file (``onnx.checker``); the file is only read.

    Raises FileNotFoundError for a missing file and ValueError for one that is not a valid ONNX
    model (a truncated download, another format).
    """
    onnx = require("onnx")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model file {path} does not exist")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # protobuf and the checker raise several types for a damaged file
        raise ValueError(f"{path} is not a valid ONNX model ({type(err).__name__}: {' '.join(str(err).split())}); "
                         "export it again (torch.onnx.export) or check that the file is complete") from err
    return model


def _dims(value_info: Any) -> list[int | str | None] | None:
    """The dimensions of a tensor's value info (int, symbolic name or None), or None without a shape."""
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim]


def _image_input(graph: Any) -> ImageInput:
    onnx = require("onnx")
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise ValueError(f"the ONNX model has {len(inputs)} inputs {names}; shiftlab measures a model whose only input "
                         "is an image batch [N, C, H, W]: export a wrapper that takes the image alone (the other "
                         "inputs fixed inside it)")
    value = inputs[0]
    dims = _dims(value)
    shape = "unknown" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
    if dims is None or len(dims) != 4:
        raise ValueError(f"the ONNX model's input {value.name!r} has shape {shape}, not an image batch "
                         "[N, C, H, W]; shiftlab measures models whose one input is 4-D")
    elem = value.type.tensor_type.elem_type
    dtypes = {onnx.TensorProto.FLOAT: torch.float32, onnx.TensorProto.DOUBLE: torch.float64,
              onnx.TensorProto.FLOAT16: torch.float16}
    if elem not in dtypes:
        kind = onnx.TensorProto.DataType.Name(elem).lower()
        raise ValueError(f"the ONNX model's input {value.name!r} is {kind}; shiftlab shifts float images (fractional "
                         f"and zero-filled shifts need them): export the model with a float input and do the "
                         f"conversion to {kind} outside the graph")
    fixed = [d if isinstance(d, int) and d > 0 else None for d in dims]
    batch = fixed[0]
    if batch is not None and batch != 1:
        raise ValueError(
            f"the ONNX model's input {value.name!r} has a fixed batch dimension of {batch} (shape {shape}); shiftlab "
            "runs batches of any size. Export it with a dynamic batch: torch.onnx.export(model, (x,), path, "
            "input_names=['input'], dynamic_axes={'input': {0: 'batch'}}), or with dynamo=True, "
            "dynamic_shapes={'x': {0: torch.export.Dim('batch')}}; or export it with a batch of 1, which shiftlab "
            "runs one image at a time")
    return ImageInput(value.name, dtypes[elem], batch, fixed[1], (fixed[2], fixed[3]))


def _constants(graph: Any) -> dict[str, Any]:
    """Initializers and ``Constant`` node values by tensor name (for kernel shapes)."""
    values = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = attr.t
    return values


def _attr(node: Any, name: str) -> list[int] | None:
    for attr in node.attribute:
        if attr.name == name:
            return list(attr.ints)
    return None


def _radius(node: Any, constants: dict[str, Any], shapes: dict[str, list[Any] | None]) -> int:
    """Half-width of a windowed node's kernel in its input's pixels: ``ceil((k - 1) / 2) * d`` with
    ``k`` the largest kernel side and ``d`` the largest dilation (0 for other ops)."""
    if node.op_type not in WINDOWED:
        return 0
    kernel = _attr(node, "kernel_shape")
    if kernel is None and len(node.input) > 1:  # Conv without the attribute: the weight's [M, C, kH, kW]
        weight = constants.get(node.input[1])
        dims = list(weight.dims) if weight is not None else shapes.get(node.input[1])
        kernel = [d for d in (dims or [])[2:] if isinstance(d, int)]
    if not kernel:
        return 0
    dilation = max(_attr(node, "dilations") or [1])
    return math.ceil((max(kernel) - 1) / 2) * dilation


def _unpadded(tensor: str, producers: dict[str, Any]) -> str:
    """``tensor`` before any padding: through ``Pad`` and through a ``Concat`` of slices of one
    tensor (how circular padding is exported)."""
    def sliced(t: str) -> str:
        while (node := producers.get(t)) is not None and node.op_type == "Slice":
            t = node.input[0]
        return t

    while (node := producers.get(tensor)) is not None:
        if node.op_type == "Pad":
            tensor = node.input[0]
        elif node.op_type == "Concat" and len(roots := {sliced(t) for t in node.input}) == 1:
            tensor = roots.pop()
        else:
            break
    return tensor


def read_graph(model: Any) -> OnnxGraph:
    """Find the image input, the layer maps and the other input-dependent nodes of ``model``
    (an ``onnx.ModelProto``, left unchanged) by ONNX shape inference.

    Nodes that only move data (:data:`MOVES`: padding, slicing, concatenation, reshaping) make no
    layer, as a functional op in a module's ``forward`` makes none: a circular padding exported as
    slices and a concatenation belongs to the convolution after it. A layer's ``source`` is its
    node's first input-dependent input before any padding.
    """
    onnx = require("onnx")
    graph = model.graph
    image = _image_input(graph)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    except Exception:  # inference of an unusual op failed: fall back to the shapes stored in the file
        inferred = graph
    infos = {v.name: v for v in [*inferred.value_info, *inferred.output, *inferred.input]}
    shapes = {name: _dims(v) for name, v in infos.items()}
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    constants = _constants(graph)
    producers = {tensor: node for node in graph.node for tensor in node.output}
    depends, layers, others, tensors = {image.name}, [], [], []
    used_names: set[str] = set()
    for node in graph.node:
        inputs = [name for name in node.input if name in depends]
        if not inputs:
            continue
        depends.update(node.output)
        maps = []
        for tensor in node.output:
            info = infos.get(tensor)
            if info is None or info.type.tensor_type.elem_type not in floats:
                continue
            tensors.append(tensor)
            dims = shapes.get(tensor)
            if dims is not None and len(dims) == 4:
                maps.append(tensor)
            elif dims is not None and (node.op_type not in MOVES or node.op_type in ("Flatten", "Reshape")):
                desc = "shape (N" + "".join(f", {d if isinstance(d, int) else '?'}" for d in dims[1:]) + ")"
                others.append((node.name or tensor, node.op_type, desc))
        if node.op_type in MOVES:
            continue
        for tensor in maps:
            name = node.name if node.name and len(maps) == 1 and node.name not in used_names else tensor
            used_names.add(name)
            layers.append(GraphLayer(name, tensor, node.op_type, _unpadded(inputs[0], producers),
                                     _radius(node, constants, shapes)))
    outputs = tuple(o.name for o in graph.output)
    result = outputs
    if len(outputs) == 1:
        producer = producers.get(outputs[0])
        dims = shapes.get(outputs[0])
        axis = next((a.i for a in producer.attribute if a.name == "axis"), None) if producer is not None else None
        if producer is not None and producer.op_type == "Softmax" and dims is not None and len(dims) == 2 \
                and axis in (None, 1, -1):
            result = (producer.input[0],)  # the logits: softmax of them is the model's own output
    parameters = sum(math.prod(t.dims) for t in constants.values() if t.data_type in floats)
    return OnnxGraph(model, image, outputs, result, tuple(layers), tuple(others), tuple(tensors), parameters)


def with_outputs(model: Any, tensors: Sequence[str]) -> bytes:
    """A serialised copy of ``model`` whose outputs are ``tensors`` (in that order), for an
    ``onnxruntime.InferenceSession``; ``model`` itself is not modified."""
    onnx = require("onnx")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    del copy.graph.output[:]
    copy.graph.output.extend(onnx.ValueInfoProto(name=name) for name in tensors)
    data: bytes = copy.SerializeToString()
    return data


@dataclass(frozen=True)
class Segment:
    """A piece of a graph (:func:`segments`): the nodes ``nodes`` (indices into the graph's node
    list, in its topological order).

    ``inputs``: the tensors it reads that are made outside it (the image input, or tensors of
    earlier pieces); ``outputs``: what it hands back, in node order: its layer maps and layer
    sources, the graph's results it makes, and the tensors later pieces read; ``layers``: its
    layer maps, in topological order; ``keep``: the tensors still needed after it runs (read by
    a later piece, or a result), every other one can be dropped.
    """

    nodes: range
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    layers: tuple[GraphLayer, ...]
    keep: frozenset[str]


def _reads(node: Any) -> list[str]:
    """The tensors ``node`` reads: its inputs, and the outer tensors its subgraphs (``If``,
    ``Loop``, ``Scan`` bodies) use."""
    names = [name for name in node.input if name]
    for attr in node.attribute:
        for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            inside = ({i.name for i in body.input} | {t.name for t in body.initializer}
                      | {name for n in body.node for name in n.output})
            names += [name for n in body.node for name in _reads(n) if name not in inside]
    return names


def segments(graph: OnnxGraph, maps_at_once: int) -> tuple[Segment, ...]:
    """Cut ``graph`` into consecutive pieces that each make at most ``maps_at_once`` (>= 1) of its layer
    maps and layer sources (the tensors the per-layer profile fetches), in topological order; the
    last piece runs to the end of the graph. Tensors one piece makes and a later one reads cross
    the cut as the later piece's inputs.

    Example:
        >>> from onnx import TensorProto, helper
        >>> maps = [helper.make_tensor_value_info(t, TensorProto.FLOAT, ["n", 1, 8, 8]) for t in ("x", "y")]
        >>> nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["b"]),
        ...          helper.make_node("Relu", ["b"], ["y"])]
        >>> graph = read_graph(helper.make_model(helper.make_graph(nodes, "g", maps[:1], maps[1:])))
        >>> [(len(piece.layers), piece.inputs, piece.outputs) for piece in segments(graph, 2)]
        [(2, ('x',), ('a', 'b')), (1, ('b',), ('y',))]
    """
    nodes = graph.model.graph.node
    producer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    last_read: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for name in _reads(node):
            last_read[name] = i
    fetched = sorted(dict.fromkeys([layer.tensor for layer in graph.layers] + list(graph.sources())),
                     key=producer.__getitem__)
    ends = [producer[name] + 1 for name in fetched[maps_at_once - 1::maps_at_once]]
    ends = sorted({end for end in ends if end < len(nodes)} | {len(nodes)})
    initializers = {t.name for t in graph.model.graph.initializer}
    wanted, results = set(fetched), set(graph.result)
    pieces = []
    for start, end in zip([0, *ends[:-1]], ends, strict=True):
        made = [name for node in nodes[start:end] for name in node.output if name]
        own = set(made)
        reads = [name for node in nodes[start:end] for name in _reads(node) if name not in own and name not in initializers]
        keep = frozenset(name for name in (*producer, graph.input.name)
                         if name in results or last_read.get(name, -1) >= end)
        outputs = tuple(name for name in made if name in wanted or name in results or name in keep)
        pieces.append(Segment(range(start, end), tuple(dict.fromkeys(reads)), outputs,
                              tuple(layer for layer in graph.layers if start <= producer[layer.tensor] < end), keep))
    return tuple(pieces)


def segment_model(graph: OnnxGraph, segment: Segment, inputs: dict[str, tuple[int, int]]) -> bytes:
    """A serialised model of the piece ``segment`` of ``graph``: its nodes, the initializers they
    use, the graph's opsets and functions; ``inputs`` gives each input's ONNX element type and
    rank (every dimension left free), ``segment.outputs`` are its outputs. ``graph`` itself is not
    modified."""
    onnx = require("onnx")
    source = graph.model
    nodes = [source.graph.node[i] for i in segment.nodes]
    used = {name for node in nodes for name in _reads(node)}
    piece = onnx.helper.make_graph(
        nodes, f"{source.graph.name} nodes {segment.nodes.start}..{segment.nodes.stop - 1}",
        [onnx.helper.make_tensor_value_info(name, elem, [f"{name}:{axis}" for axis in range(rank)])
         for name, (elem, rank) in inputs.items()],
        [onnx.ValueInfoProto(name=name) for name in segment.outputs],
        initializer=[t for t in source.graph.initializer if t.name in used])
    model = onnx.helper.make_model(piece, opset_imports=source.opset_import, ir_version=source.ir_version)
    model.functions.extend(source.functions)
    data: bytes = model.SerializeToString()
    return data
