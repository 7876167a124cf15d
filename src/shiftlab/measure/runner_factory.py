"""The runner for what a user passed as ``model`` (``docs/definitions.md``, "How a measurement
runs"): every measuring call goes through :func:`make_runner`, which picks the backend. Kept
apart from both runners so that neither imports the other: :mod:`shiftlab.measure.runner` (torch)
and :mod:`shiftlab.measure.onnx_runner` (onnxruntime, which uses the torch runner's device rules).
"""

from __future__ import annotations

import os

import torch

from shiftlab.measure.onnx_runner import MAPS_AT_ONCE, OnnxRunner, is_onnx_model
from shiftlab.measure.runner import TorchRunner

__all__ = ["make_runner"]


def make_runner(model: object, device: str | torch.device | None = None, *,
                maps_at_once: int = MAPS_AT_ONCE) -> TorchRunner | OnnxRunner:
    """A :class:`~shiftlab.measure.runner.TorchRunner` for an ``nn.Module``; an
    :class:`~shiftlab.measure.onnx_runner.OnnxRunner` for the path of an ``.onnx`` file or an
    ``onnxruntime.InferenceSession`` (``docs/onnx.md``; ``maps_at_once``: the layer maps of one
    onnxruntime run of its per-layer profile). ``TypeError`` for anything else, and
    ``ValueError`` for a path that is not an ONNX file."""
    if is_onnx_model(model):
        return OnnxRunner(model, device, maps_at_once=maps_at_once)
    if isinstance(model, (str, os.PathLike)):
        raise ValueError(f"a model given as a path must be an ONNX file (.onnx), got {os.fspath(model)!r}; load a "
                         "PyTorch model as an nn.Module (your factory and model.load_state_dict) and pass the module")
    return TorchRunner(model, device)  # type: ignore[arg-type]  # not a module: TypeError saying what to pass
