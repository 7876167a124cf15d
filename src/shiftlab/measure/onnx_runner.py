"""Run an ONNX model for measurement with onnxruntime (``docs/onnx.md``).

:class:`OnnxRunner` is the engine's view of an ONNX model, the counterpart of
:class:`~shiftlab.measure.runner.TorchRunner`: where it runs, in which dtype, one forward pass.
Per-layer equivariance asks for the graph's layer maps through :meth:`OnnxMeasuring.watch`:
the runner then runs the graph in consecutive pieces (:func:`~shiftlab.measure.onnx_graph.segments`),
in-memory models whose outputs are their layer maps and what later pieces read, and hands each
map to the hook, in topological order, once its piece has run: a pass holds at most
``maps_at_once`` layer maps (:data:`MAPS_AT_ONCE` by default) besides the tensors carried to later
pieces, and computes the graph once, as a single run would. The user's file, and an
``InferenceSession`` the user passed, are only read.

``onnxruntime`` is imported inside the functions that need it (an optional dependency).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from shiftlab.measure.onnx_graph import (
    GraphLayer,
    OnnxGraph,
    Segment,
    load_model,
    read_graph,
    require,
    segment_model,
    segments,
    with_outputs,
)
from shiftlab.measure.runner import resolve_device, user_stacklevel

__all__ = ["MAPS_AT_ONCE", "LayerHook", "OnnxMeasuring", "OnnxRunner", "is_onnx_model"]

#: The layer maps an ONNX model's per-layer profile fetches from one onnxruntime run, by default
#: (``docs/onnx.md``, "Memory"): the graph runs in pieces of this many maps, so a pass holds this
#: many maps of its images (and the tensors later pieces read) instead of every map of the graph.
MAPS_AT_ONCE = 32

#: ``hook(layer, map, source_hw)``: a layer map ``[b, C_l, H_l, W_l]`` of one pass and the
#: ``(H, W)`` of the node's first input (None when that input is not a map).
LayerHook = Callable[[GraphLayer, Tensor, "tuple[int, int] | None"], None]


def is_onnx_model(model: object) -> bool:
    """Whether ``model`` is what :class:`OnnxRunner` takes: a path to an ``.onnx`` file (``str`` or
    ``os.PathLike``) or an ``onnxruntime.InferenceSession``."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model).lower().endswith(".onnx")
    ort = sys.modules.get("onnxruntime")  # a user holding a session has imported it
    return ort is not None and isinstance(model, ort.InferenceSession)


class OnnxMeasuring:
    """Handle yielded by :meth:`OnnxRunner.session`: the hooks of the session's passes, dropped
    when the session ends."""

    def __init__(self) -> None:
        self.layer_hook: LayerHook | None = None
        self.output_hook: Callable[[object], None] | None = None

    def watch(self, layer_hook: LayerHook, output_hook: Callable[[object], None] | None = None) -> None:
        """Call ``layer_hook`` on every layer map of each pass, then ``output_hook`` on its output."""
        self.layer_hook, self.output_hook = layer_hook, output_hook

    def close(self) -> None:
        self.layer_hook = self.output_hook = None


def _graph_of(session: Any) -> Any:
    """The ``onnx.ModelProto`` an ``InferenceSession`` was made from (its path or bytes)."""
    onnx = require("onnx")
    path, data = getattr(session, "_model_path", None), getattr(session, "_model_bytes", None)
    if path:
        return load_model(path)
    if data:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
        return model
    raise ValueError("cannot read the graph of this InferenceSession (it was made from neither a path nor bytes); "
                     "pass the .onnx file's path instead")


class OnnxRunner:
    """The engine's view of an ONNX model (``docs/definitions.md``, "How a measurement runs").

    Args:
        model: a path to an ``.onnx`` file or an ``onnxruntime.InferenceSession`` (its graph is read
            from the path or bytes it was made from; its session options and providers are reused).
            Its one input must be an image batch ``[N, C, H, W]`` of a floating type with a dynamic
            batch dimension, or a batch fixed at 1 (then every image runs in a pass of its own).
        device: ``None`` (the CPU; a session's own provider), ``"cpu"``, ``"cuda"`` (needs
            onnxruntime-gpu) or ``"auto"`` (CUDA when both torch and onnxruntime have it).
        maps_at_once: the most layer maps one onnxruntime run of the per-layer profile makes
            (:func:`~shiftlab.measure.onnx_graph.segments`); the results do not depend on it.
            The pieces run without onnxruntime's layout optimizations (at most
            ``ORT_ENABLE_EXTENDED``, which every cut computes alike) and without a memory arena
            of their own (an arena keeps its largest run allocated); a session's options are
            set so only while the pieces' sessions are made, and restored.

    Attributes:
        graph: the :class:`~shiftlab.measure.onnx_graph.OnnxGraph` (input, layer maps, outputs);
        model: the same graph, what the polyphase certificate is handed (it needs a torch module
            and says so).
    """

    def __init__(self, model: object, device: str | torch.device | None = None, *,
                 maps_at_once: int = MAPS_AT_ONCE) -> None:
        if isinstance(maps_at_once, bool) or not isinstance(maps_at_once, int) or maps_at_once < 1:
            raise ValueError(f"maps_at_once must be an int >= 1, got {maps_at_once!r}")
        ort = require("onnxruntime")
        self._options: Any = None
        providers: list[Any] = []
        if isinstance(model, ort.InferenceSession):
            proto = _graph_of(model)
            self._options = model.get_session_options()
            options = model.get_provider_options()
            providers = [(name, options.get(name, {})) for name in model.get_providers()]
        else:
            proto = load_model(model)  # type: ignore[arg-type]
        self.graph: OnnxGraph = read_graph(proto)
        self.model = self.graph
        self.device, self._providers = _placement(device, providers)
        self._sessions: dict[tuple[str, ...], Any] = {}
        self.maps_at_once = maps_at_once
        self._pieces: tuple[Segment, ...] | None = None
        self._piece_sessions: dict[int, Any] = {}
        self._handle: OnnxMeasuring | None = None
        if self.graph.input.batch == 1:
            warnings.warn(f"the ONNX model's input {self.graph.input.name!r} has a fixed batch of 1: shiftlab runs "
                          "every image in a pass of its own (slower); export it with a dynamic batch "
                          "(dynamic_axes={'input': {0: 'batch'}}) for batched passes", UserWarning, stacklevel=user_stacklevel())

    @property
    def identity(self) -> str:
        """What says it is the same model on every process: a hash of the graph's serialised bytes."""
        return hashlib.sha256(self.graph.model.SerializeToString()).hexdigest()

    @property
    def dtype(self) -> torch.dtype:
        """The dtype inputs are cast to: the graph input's element type."""
        return self.graph.input.dtype

    def _session(self, outputs: tuple[str, ...]) -> Any:
        """An ``InferenceSession`` of the graph with ``outputs`` as its outputs (made once)."""
        session = self._sessions.get(outputs)
        if session is None:
            session = self._new_session(with_outputs(self.graph.model, outputs), piece=False)
            self._sessions[outputs] = session
        return session

    def _new_session(self, data: bytes, *, piece: bool) -> Any:
        """An ``InferenceSession`` of the serialised model ``data`` with the user's session options
        (or shiftlab's: torch's thread count, errors only); for a piece of the per-layer profile,
        without layout optimizations and without a memory arena (:class:`OnnxRunner`)."""
        ort = require("onnxruntime")
        options = self._options
        if options is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()  # the thread count torch uses
            options.log_severity_level = 3  # errors only
        if not piece:
            return ort.InferenceSession(data, options, providers=self._providers)
        level = ort.GraphOptimizationLevel
        saved = options.graph_optimization_level, options.enable_cpu_mem_arena
        if saved[0] not in (level.ORT_DISABLE_ALL, level.ORT_ENABLE_BASIC, level.ORT_ENABLE_EXTENDED):
            options.graph_optimization_level = level.ORT_ENABLE_EXTENDED
        options.enable_cpu_mem_arena = False
        try:  # the session copies the options: the user's object is restored at once
            return ort.InferenceSession(data, options, providers=self._providers)
        finally:
            options.graph_optimization_level, options.enable_cpu_mem_arena = saved

    def _check(self, batch: Tensor) -> None:
        image = self.graph.input
        c, h, w = batch.shape[1:]
        if image.channels is not None and image.channels != c:
            want = f"{image.channels} channel" + ("s" if image.channels != 1 else "")
            raise ValueError(f"the ONNX model's input {image.name!r} {image.describe()} takes {want}, the images "
                             f"have {c}: give images with {want}")
        H, W = image.hw
        if (H is not None and H != h) or (W is not None and W != w):
            size = f"{H or '?'}x{W or '?'}"
            raise ValueError(f"the ONNX model's input {image.name!r} is fixed at {size} ({image.describe()}), the "
                             f"images it would see are {h}x{w}: resize the images to {size}, measure windows of that size "
                             f"(mode='crop', crop_size=({H or h}, {W or w})), or export the model with dynamic H and W")

    def _rows(self, batch: Tensor) -> list[np.ndarray]:
        """``batch`` as the arrays one run each takes: all of it, or one image per run when the
        graph's batch is fixed at 1."""
        x = np.ascontiguousarray(batch.detach().cpu().numpy())
        return [x] if self.graph.input.batch is None else [x[i: i + 1] for i in range(x.shape[0])]

    def _runs(self, session: Any, names: tuple[str, ...], feeds: list[dict[str, np.ndarray]],
              batch: Tensor) -> list[list[np.ndarray]]:
        """``session.run`` of ``names`` for each of ``feeds`` (the rows of ``batch``), interruptible."""
        try:
            return _interruptible(session, list(names), feeds)
        except Exception as err:  # onnxruntime raises its own exception types
            raise RuntimeError(f"the ONNX model failed on a batch of shape {tuple(batch.shape)}: "
                               f"{' '.join(str(err).split())}") from err

    def _tensor(self, rows: list[np.ndarray]) -> Tensor:
        """One tensor on :attr:`device` of a tensor's values in each run (the rows of a batch)."""
        return torch.from_numpy(rows[0] if len(rows) == 1 else np.concatenate(rows)).to(self.device)

    def _run(self, names: tuple[str, ...], batch: Tensor) -> dict[str, Tensor]:
        """The tensors ``names`` for ``batch``, from one run of the graph (per image when its batch
        is fixed at 1)."""
        runs = self._runs(self._session(names), names, [{self.graph.input.name: x} for x in self._rows(batch)], batch)
        return {name: self._tensor([run[k] for run in runs]) for k, name in enumerate(names)}

    def _run_watched(self, batch: Tensor, hook: LayerHook) -> list[Tensor]:
        """The graph's results for ``batch``, run piece by piece (:func:`~shiftlab.measure.onnx_graph.segments`),
        each layer map handed to ``hook`` (with the size of the map it was made from) once its
        piece has run, and dropped with every tensor no later piece reads."""
        if self._pieces is None:
            self._pieces = segments(self.graph, self.maps_at_once)
        live = {self.graph.input.name: self._rows(batch)}  # tensor -> its value in each run (image or batch)
        n_runs = len(live[self.graph.input.name])
        sizes = {self.graph.input.name: (batch.shape[-2], batch.shape[-1])}
        for k, piece in enumerate(self._pieces):
            _return_freed_memory()  # what the last piece (or reading the graph) freed, before this one allocates
            session = self._piece_sessions.get(k)
            if session is None:
                inputs = {name: (require("onnx").helper.np_dtype_to_tensor_dtype(live[name][0].dtype), live[name][0].ndim)
                          for name in piece.inputs}
                session = self._piece_sessions[k] = self._new_session(segment_model(self.graph, piece, inputs), piece=True)
            feeds = [{name: live[name][r] for name in piece.inputs} for r in range(n_runs)]
            runs = self._runs(session, piece.outputs, feeds, batch)
            del feeds
            live.update({name: [run[j] for run in runs] for j, name in enumerate(piece.outputs)})
            del runs
            sizes.update({name: (live[name][0].shape[-2], live[name][0].shape[-1]) for name in piece.outputs
                          if live[name][0].ndim == 4})
            for layer in piece.layers:
                hook(layer, self._tensor(live[layer.tensor]), sizes.get(layer.source))
                if layer.tensor not in piece.keep:  # handed over: its memory can go before the next map's work
                    del live[layer.tensor]
            for name in [name for name in live if name not in piece.keep]:
                del live[name]
        return [self._tensor(live[name]) for name in self.graph.result]

    def __call__(self, batch: Tensor) -> object:
        """One forward pass of ``batch [b, C, h, w]`` (in :attr:`dtype`): the graph's result
        (:attr:`OnnxGraph.result`; a tuple when there are several), a tensor on :attr:`device`.
        Inside a session that watches layers, each layer map goes to the hook first."""
        self._check(batch)
        handle = self._handle
        if handle is None or handle.layer_hook is None:
            values = self._run(self.graph.result, batch)
            outputs = [values[name] for name in self.graph.result]
        else:
            outputs = self._run_watched(batch, handle.layer_hook)
        result = outputs[0] if len(outputs) == 1 else tuple(outputs)
        if handle is not None and handle.layer_hook is not None and handle.output_hook is not None:
            handle.output_hook(result)
        return result

    @contextmanager
    def session(self, *, warn: bool = True) -> Iterator[OnnxMeasuring]:
        """The measurement state: ``torch.inference_mode`` for the tensors made from the outputs,
        and a handle whose hooks end with the block. ``warn`` is accepted for the torch runner's
        sake: a graph has no training mode to warn about."""
        handle = OnnxMeasuring()
        self._handle = handle
        try:
            with torch.inference_mode():
                yield handle
        finally:
            handle.close()
            self._handle = None

    def bytes_per_image(self, example: Tensor) -> int:
        """Bytes of the input and of every floating tensor that depends on it for the one-image
        batch ``example`` (an upper bound on what a pass holds per image; one probe pass)."""
        self._check(example)
        values = self._run(tuple(dict.fromkeys(self.graph.tensors)), example)
        return example.numel() * example.element_size() + sum(v.numel() * v.element_size() for v in values.values())


def _interruptible(session: Any, names: list[str], feeds: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    """``session.run`` of each of ``feeds``, in a worker thread, so that Ctrl-C and SIGTERM reach the caller
    during a long inference (a signal's Python handler runs only in the main thread, and only once
    onnxruntime returns): the main thread waits, and on ``KeyboardInterrupt`` (or any exception)
    sets onnxruntime's terminate flag, which stops the run at its next node (also inside a Loop),
    waits up to :data:`STOP_WAIT` seconds for the worker and raises on (issue 21, case 5)."""
    ort = require("onnxruntime")
    options = ort.RunOptions()
    options.log_severity_level = 4  # a failure is raised with its message; a stop is not the user's news
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["runs"] = [session.run(names, feed, options) for feed in feeds if not options.terminate]
        except BaseException as err:  # handed to the main thread
            box["error"] = err

    worker = threading.Thread(target=work, name="shiftlab-onnx-run", daemon=True)
    try:
        worker.start()  # inside: a signal while it starts stops the run too
        while worker.is_alive():
            worker.join(0.25)
    except BaseException:
        options.terminate = True
        worker.join(STOP_WAIT)
        raise
    if "error" in box:
        raise box["error"]
    runs: list[list[np.ndarray]] = box["runs"]
    return runs


#: Seconds an interrupted ONNX run is given to stop at its next node before the interruption goes on.
STOP_WAIT = 5.0

#: glibc's ``malloc_trim`` (None elsewhere: other C libraries return freed memory themselves).
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None) if sys.platform.startswith("linux") else None


def _return_freed_memory() -> None:
    """Hand the heap memory freed since the last call back to the system (glibc's
    ``malloc_trim(0)``; nothing elsewhere). The maps of a piece are allocated and freed in sizes
    below glibc's threshold for their own memory mappings, so without it the freed memory stays
    with the process in pieces too small for the next piece's maps, and the resident set grows
    pass after pass to near twice what a piece holds (``docs/onnx.md``, "Memory")."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _placement(device: str | torch.device | None, providers: list[Any]) -> tuple[torch.device, list[Any]]:
    """``(device, execution providers)`` for ``device`` (``providers``: a session's own, or none)."""
    ort = require("onnxruntime")
    available = ort.get_available_providers()
    cpu: list[Any] = [("CPUExecutionProvider", {})]
    if device is None:
        if providers and providers[0][0] == "CUDAExecutionProvider":
            return torch.device("cuda", int(providers[0][1].get("device_id", 0))), providers
        return torch.device("cpu"), providers or cpu
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() and "CUDAExecutionProvider" in available else "cpu"
    dev = resolve_device(device)
    if dev.type == "cpu":
        return dev, cpu
    if dev.type == "cuda" and "CUDAExecutionProvider" in available:
        return dev, [("CUDAExecutionProvider", {"device_id": dev.index or 0}), *cpu]
    raise ValueError(f"device {str(dev)!r}: this onnxruntime runs ONNX models on {available}; for CUDA install "
                     "onnxruntime-gpu (pip install onnxruntime-gpu), or use device='cpu'")
