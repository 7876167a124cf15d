"""Export a model to ONNX and check the file against torch (``docs/onnx.md``, "Exporting a converted model").

:func:`export_onnx` calls torch's default exporter (``torch.onnx.export(..., dynamo=True)``, which
needs ``onnxscript``: ``pip install -c constraints.txt "shiftlab[onnx]"``) with the settings the
measurement path expects: one input named ``input`` with a dynamic batch axis, the weights inside
the file, opset 19 (onnxruntime >= 1.16), the exporter's graph optimisation (constant folding) on.
Then it runs the file once with onnxruntime on the example input and compares every output with
the module's, so a file that does not compute what the module computes is never handed on
silently. BlurPool and APS layers (followers included) export as standard operators: APS's
phase choice becomes ``ReduceL2`` / ``ArgMax`` / ``GatherND`` nodes evaluated on each input, so the
file chooses the phases the module chooses (exactly, except where two polyphase norms tie to
float rounding).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

__all__ = ["OnnxExport", "OnnxExportError", "export_onnx"]

#: The opset :func:`export_onnx` writes by default: the first whose ``Pad`` has mode ``wrap``, which
#: circular padding exports as, and the newest that onnxruntime 1.16 (the ``onnx`` extra's oldest) runs.
DEFAULT_OPSET = 19
_PACKAGES = ("onnx", "onnxruntime", "onnxscript")
# torch 2.13's own notes during every export, about itself: a deprecated pytree check it makes
# internally, and the torchvision operators it skips registering when torchvision is absent.
_TORCH_NOTE = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
_TORCH_REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"


class OnnxExportError(RuntimeError):
    """The exporter failed, or the exported file's outputs differ from the module's."""


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote and how closely the file reproduces the module.

    Attributes:
        path: the ``.onnx`` file (weights inside).
        opset: its ONNX opset.
        dynamic_batch: whether the input's batch axis is symbolic (``batch``).
        max_abs_diff: ``max |onnxruntime - torch|`` over every output element on the example input.
        max_abs_output: ``max |torch|`` over the same outputs (the scale of ``max_abs_diff``).
        seconds: time taken by the exporter (without the check).
    """

    path: Path
    opset: int
    dynamic_batch: bool
    max_abs_diff: float
    max_abs_output: float
    seconds: float


def export_onnx(
    model: nn.Module,
    example_input: Tensor,
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> OnnxExport:
    """Export ``model`` to ``path`` with torch's exporter, run the file once and compare with torch.

    Args:
        model: a module in eval mode (``model.eval()``: the file is for inference) taking one tensor
            and returning a tensor or a tuple/list of tensors.
        example_input: a floating tensor ``(N, ...)`` (an image batch ``(N, C, H, W)`` for
            :func:`shiftlab.invariance` / :func:`shiftlab.equivariance`); every other axis is
            fixed in the file at this size.
        path: where to write; must end in ``.onnx`` (how shiftlab recognises an ONNX model).
        opset: ONNX opset of the file.
        dynamic_batch: make axis 0 of the input symbolic, so the file takes any batch size.
        rtol, atol: the check passes when ``max |onnx - torch| <= atol + rtol * max |torch|``.

    Returns:
        :class:`OnnxExport`: the path, ``max_abs_diff`` and the export time.

    Raises:
        ImportError: ``onnx``, ``onnxruntime`` or ``onnxscript`` is missing (the ``onnx`` extra).
        ValueError: the model is in training mode, the input is no floating tensor, or the path
            does not end in ``.onnx``.
        OnnxExportError: torch's exporter failed (its error chained; the message gives the root
            cause), the file's batch axis is fixed although ``dynamic_batch`` asked for a symbolic
            one (the model fixed it), or its outputs differ from the module's beyond the tolerance
            (in the last two cases the file is left at ``path`` to inspect).

    Example (not run here: an export takes seconds)::

        model, report = shiftlab.convert(resnet18(num_classes=10), "blur", example_input=torch.randn(2, 3, 64, 64))
        done = shiftlab.export_onnx(model.eval(), torch.randn(2, 3, 64, 64), "resnet18_blur.onnx")
        print(done.max_abs_diff)                # e.g. 5e-07
        shiftlab.invariance(done.path, images)  # measured through onnxruntime
    """
    _require_packages()
    path = _check_arguments(model, example_input, path)
    with torch.no_grad():
        expected = _as_outputs(model(example_input))
    start = time.perf_counter()
    _export(model, example_input, path, opset, dynamic_batch, len(expected))
    seconds = time.perf_counter() - start
    session = _session(path)
    if dynamic_batch:
        _check_dynamic_batch(session, path, type(model).__name__)
    diff, scale = _compare(session, example_input, expected)
    if not diff <= atol + rtol * scale:  # NaN fails too
        raise OnnxExportError(
            f"the exported file's outputs differ from {type(model).__name__}'s on example_input: "
            f"max |onnx - torch| = {diff:.3g} > atol + rtol * max |torch| = {atol + rtol * scale:.3g} "
            f"(max |torch| = {scale:.3g}); the file is left at {path} to inspect")
    return OnnxExport(path, opset, dynamic_batch, diff, scale, seconds)


def _require_packages() -> None:
    missing = [name for name in _PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"export_onnx needs {', '.join(missing)}: "
                          f"pip install -c constraints.txt \"shiftlab[onnx]\" (or pip install {' '.join(missing)})")


def _check_arguments(model: nn.Module, example_input: Tensor, path: str | Path) -> Path:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if model.training:
        raise ValueError(f"{type(model).__name__} is in training mode: call model.eval() before exporting "
                         "(BatchNorm and dropout would be exported as they train)")
    if not isinstance(example_input, Tensor) or not example_input.is_floating_point() or example_input.dim() < 1:
        got = (f"a {example_input.dtype} tensor of shape {tuple(example_input.shape)}"
               if isinstance(example_input, Tensor) else type(example_input).__name__)
        raise ValueError(f"example_input must be a floating tensor (N, ...), got {got}")
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"path must end in .onnx (shiftlab measures files by that suffix), got {str(path)!r}")
    return path


def _as_outputs(output: object) -> list[Tensor]:
    """The module's output as a list of tensors (one for a tensor, each element of a tuple/list)."""
    outputs = list(output) if isinstance(output, (tuple, list)) else [output]
    tensors = [t for t in outputs if isinstance(t, Tensor)]
    if not tensors or len(tensors) != len(outputs):
        raise ValueError(f"export_onnx needs a model returning a tensor or a tuple/list of tensors, "
                         f"got {type(output).__name__}")
    return tensors


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence torch's notes about itself during an export (nothing about the model)."""
    logger = logging.getLogger(_TORCH_REGISTRATION_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_TORCH_NOTE, category=FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def _export(model: nn.Module, example_input: Tensor, path: Path, opset: int, dynamic_batch: bool,
            n_outputs: int) -> None:
    names = ["output"] if n_outputs == 1 else [f"output_{i}" for i in range(n_outputs)]
    shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    try:
        with _quiet_exporter():
            torch.onnx.export(model, (example_input,), str(path), dynamo=True, opset_version=opset,
                              input_names=["input"], output_names=names, dynamic_shapes=shapes,
                              external_data=False, optimize=True, verbose=False)
    except Exception as error:
        raise OnnxExportError(f"torch.onnx.export could not export {type(model).__name__}: {_root_cause(error)} "
                              "(the exporter's full error is chained above)") from error


def _root_cause(error: BaseException) -> str:
    """``Type: first line`` of the innermost exception ``error`` was raised from (torch's exporter wraps
    the reason, e.g. a data-dependent branch, in generic steps), without terminal colour codes."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _session(path: Path) -> InferenceSession:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _check_dynamic_batch(session: InferenceSession, path: Path, model_name: str) -> None:
    batch = session.get_inputs()[0].shape[0]
    if isinstance(batch, int):
        raise OnnxExportError(
            f"{model_name} fixes its batch size: the exporter wrote a batch axis of {batch}, not a symbolic one "
            f"(e.g. a tensor of that batch size made in forward); change the model, or pass dynamic_batch=False "
            f"(shiftlab measures a file with a batch of 1 one image at a time); the file is left at {path}")


def _compare(session: InferenceSession, example_input: Tensor, expected: list[Tensor]) -> tuple[float, float]:
    """``(max |onnx - torch|, max |torch|)`` over every output of ``session`` on ``example_input``."""
    feed = {session.get_inputs()[0].name: example_input.detach().cpu().numpy()}
    got = session.run(None, feed)
    if len(got) != len(expected):
        raise OnnxExportError(f"the exported file has {len(got)} outputs, the module returns {len(expected)}")
    diffs, scales = [0.0], [0.0]
    for i, (onnx_out, torch_out) in enumerate(zip(got, expected, strict=True)):
        reference = torch_out.detach().cpu().numpy().astype(np.float64)
        if onnx_out.shape != reference.shape:
            raise OnnxExportError(f"output {i}: the exported file gives shape {onnx_out.shape}, "
                                  f"the module {reference.shape}")
        if reference.size:
            diffs.append(float(np.abs(onnx_out.astype(np.float64) - reference).max()))
            scales.append(float(np.abs(reference).max()))
    return float(np.max(diffs)), float(np.max(scales))  # np.max keeps a NaN, which fails the check
