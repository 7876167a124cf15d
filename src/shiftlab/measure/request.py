"""The first step of every measurement (``docs/definitions.md``, "How a measurement runs"):
everything a call asked for, checked once before any forward pass, as a :class:`Request`.

A measuring function then goes through four steps, each once: *check* (:func:`check_request`
and the metric's own arguments: labels, ``certify``, ``layers``), *plan* (which shifts run, which
layers are hooked), *run* (:func:`~shiftlab.measure.driver.run_chunks` over this process's
images, :func:`~shiftlab.measure.driver.measure_sharded` across processes) and *compute* (the
result from the summed statistics).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from shiftlab.measure.distributed import local_module
from shiftlab.measure.driver import BatchSize, ProgressFn, check_inputs
from shiftlab.measure.onnx_runner import MAPS_AT_ONCE, OnnxRunner
from shiftlab.measure.runner import TorchRunner
from shiftlab.measure.runner_factory import make_runner
from shiftlab.measure.shiftsets import ShiftSet, ShiftSpec, as_shift_set

__all__ = ["Request", "check_request"]


@dataclass(frozen=True)
class Request:
    """A measurement's arguments, checked (:func:`check_request`).

    Attributes:
        runner: the model's runner (:func:`~shiftlab.measure.runner_factory.make_runner`).
        images: ``[N, C, H, W]`` floating point, finite, non-empty.
        shift_set: the shifts, each applicable to the images (or to the crop windows).
        mode: ``"circular"``, ``"zeros"``, ``"fourier"`` or ``"crop"``.
        batch_size: images per forward pass, or ``"auto"``.
        crop_size: ``(h, w)`` in crop mode, else None.
        in_hw: the ``(h, w)`` the model sees (the images' own, or ``crop_size``).
        progress: called as ``progress(done, total)`` after each forward pass, or None.
    """

    runner: TorchRunner | OnnxRunner
    images: Tensor
    shift_set: ShiftSet
    mode: str
    batch_size: BatchSize
    crop_size: tuple[int, int] | None
    in_hw: tuple[int, int]
    progress: ProgressFn | None = None


def check_request(model: object, images: Tensor, shifts: ShiftSpec, *, mode: str, batch_size: BatchSize,
                  crop_size: tuple[int, int] | None, device: str | torch.device | None,
                  progress: ProgressFn | None = None, maps_at_once: int = MAPS_AT_ONCE) -> Request:
    """Every check that invariance and equivariance share, before any forward pass: the shift set
    (an int range too large for the images is refused before it is built), the images, the batch
    size, each shift against the image or crop size, then the model (a ``DistributedDataParallel``
    wrapper measured through the module it holds), the device and, for an ONNX model, the layer
    maps of one onnxruntime run of the per-layer profile (``maps_at_once``)."""
    shift_set = as_shift_set(shifts, images, mode)
    in_hw = check_inputs(images, shift_set, mode=mode, batch_size=batch_size, crop_size=crop_size)
    runner = make_runner(local_module(model), device, maps_at_once=maps_at_once)
    return Request(runner, images, shift_set, mode, batch_size, crop_size, in_hw, progress)
