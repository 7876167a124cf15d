"""Run an ONNX model for measurement with onnxruntime (``docs/onnx.md``).

:class:`OnnxRunner` is the engine's view of an ONNX model, the counterpart of
:class:`~shiftlab.measure.runner.TorchRunner`: where it runs, in which dtype, one forward pass.
Per-layer equivariance asks for the graph's layer maps through :meth:`OnnxMeasuring.watch`:
the runner then runs an in-memory copy of the graph whose extra outputs are every layer map
(:func:`~shiftlab.measure.onnx_graph.with_outputs`) and hands each map to the hook, in
topological order. The user's file, and an ``InferenceSession`` the user passed, are only read.

``onnxruntime`` is imported inside the functions that need it (an optional dependency).
"""

from __future__ import annotations

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

from shiftlab.measure.onnx_graph import GraphLayer, OnnxGraph, load_model, read_graph, require, with_outputs
from shiftlab.measure.runner import resolve_device, user_stacklevel

__all__ = ["LayerHook", "OnnxMeasuring", "OnnxRunner", "is_onnx_model"]

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

    Attributes:
        graph: the :class:`~shiftlab.measure.onnx_graph.OnnxGraph` (input, layer maps, outputs);
        model: the same graph, what the polyphase certificate is handed (it needs a torch module
            and says so).
    """

    def __init__(self, model: object, device: str | torch.device | None = None) -> None:
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
            ort = require("onnxruntime")
            options = self._options
            if options is None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = torch.get_num_threads()  # the thread count torch uses
                options.log_severity_level = 3  # errors only
            session = ort.InferenceSession(with_outputs(self.graph.model, outputs), options,
                                           providers=self._providers)
            self._sessions[outputs] = session
        return session

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

    def _run(self, names: tuple[str, ...], batch: Tensor) -> dict[str, Tensor]:
        """The tensors ``names`` for ``batch`` (one image per call when the batch is fixed at 1)."""
        session = self._session(names)
        x = np.ascontiguousarray(batch.detach().cpu().numpy())
        rows = [x] if self.graph.input.batch is None else [x[i: i + 1] for i in range(x.shape[0])]
        try:
            runs = _interruptible(session, list(names), self.graph.input.name, rows)
        except Exception as err:  # onnxruntime raises its own exception types
            raise RuntimeError(f"the ONNX model failed on a batch of shape {tuple(batch.shape)}: "
                               f"{' '.join(str(err).split())}") from err
        return {name: torch.from_numpy(runs[0][k] if len(runs) == 1 else np.concatenate([r[k] for r in runs]))
                .to(self.device) for k, name in enumerate(names)}

    def __call__(self, batch: Tensor) -> object:
        """One forward pass of ``batch [b, C, h, w]`` (in :attr:`dtype`): the graph's result
        (:attr:`OnnxGraph.result`; a tuple when there are several), a tensor on :attr:`device`.
        Inside a session that watches layers, each layer map goes to the hook first."""
        self._check(batch)
        handle = self._handle
        watch = handle is not None and handle.layer_hook is not None
        maps = tuple(layer.tensor for layer in self.graph.layers) + self.graph.sources() if watch else ()
        values = self._run(tuple(dict.fromkeys(self.graph.result + maps)), batch)
        if watch:
            sizes = {name: (v.shape[-2], v.shape[-1]) for name, v in values.items() if v.dim() == 4}
            sizes[self.graph.input.name] = (batch.shape[-2], batch.shape[-1])
            for layer in self.graph.layers:
                handle.layer_hook(layer, values[layer.tensor], sizes.get(layer.source))  # type: ignore[union-attr,misc]
        outputs = [values[name] for name in self.graph.result]
        result = outputs[0] if len(outputs) == 1 else tuple(outputs)
        if watch and handle.output_hook is not None:  # type: ignore[union-attr]
            handle.output_hook(result)  # type: ignore[union-attr]
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


def _interruptible(session: Any, names: list[str], input_name: str, rows: list[np.ndarray]) -> list[list[np.ndarray]]:
    """``session.run`` of each row, in a worker thread, so that Ctrl-C and SIGTERM reach the caller
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
            box["runs"] = [session.run(names, {input_name: r}, options) for r in rows if not options.terminate]
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
