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
layer is either added there or carried in from its input;
:meth:`~shiftlab.measure.equivariance_result.EquivarianceResult.origins` tells which.

:func:`equivariance` checks every argument once (:func:`~shiftlab.measure.request.check_request`,
then the layer names: :func:`~shiftlab.measure.equivariance_recorder.select_layers`), runs the
passes with the reference images in each (the hooks of
:class:`~shiftlab.measure.equivariance_recorder.EquivarianceRecorder` add each layer's errors to
:class:`~shiftlab.measure.layer_records.LayerAccumulator` sums, collected as
:class:`~shiftlab.measure.equivariance_statistics.EquivarianceStats`, which add up across blocks
and processes) and computes the
:class:`~shiftlab.measure.equivariance_result.EquivarianceResult`
(:func:`~shiftlab.measure.equivariance_statistics.equivariance_compute`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from shiftlab.measure.distributed import all_or_none
from shiftlab.measure.driver import BatchSize, ProgressFn, RunInfo, measure_sharded, run_chunks
from shiftlab.measure.equivariance_recorder import OUTPUT, EquivarianceRecorder, LayerSelection, select_layers
from shiftlab.measure.equivariance_result import INHERIT_FACTOR, EquivarianceResult, LayerEquivariance
from shiftlab.measure.equivariance_statistics import EquivarianceStats, equivariance_compute
from shiftlab.measure.onnx_runner import MAPS_AT_ONCE
from shiftlab.measure.request import Request, check_request
from shiftlab.measure.shiftsets import ShiftSpec

# The result and statistics types are defined in their own modules and importable from here too.
__all__ = ["INHERIT_FACTOR", "EquivarianceResult", "EquivarianceStats", "LayerEquivariance", "equivariance",
           "equivariance_compute", "equivariance_stats"]


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
    maps_at_once: int = MAPS_AT_ONCE,
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
        maps_at_once: an ONNX model's layer maps held at once (``docs/onnx.md``, "Memory"): the
            graph runs in consecutive pieces that each make at most this many of them, so a
            pass holds that many maps of its images (and the tensors later pieces read) instead
            of all of them. Results do not depend on it. A torch model's hooks see each map as
            its forward pass makes it: there it changes nothing.

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
        request, selection = _check(model, images, shifts, mode, layers, batch_size, crop_size, device, progress,
                                    maps_at_once)

        def measure(lo: int, hi: int, size: BatchSize) -> tuple[EquivarianceStats, RunInfo]:
            return _run(request, selection, border, lo, hi, size)

        total, used_batch, used_device = measure_sharded(
            "equivariance", request.runner, images, measure, batch_size=batch_size, mode=mode, crop_size=crop_size,
            shifts=request.shift_set.offsets, arguments=(mode, layers, border, batch_size, crop_size))
    assert total is not None  # rank 0 always has images
    result = equivariance_compute(total)
    result.batch_size, result.device = used_batch, used_device
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
    maps_at_once: int = MAPS_AT_ONCE,
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
    request, selection = _check(model, images, shifts, mode, layers, batch_size, crop_size, device, progress,
                                maps_at_once)
    return _run(request, selection, border, 0, images.shape[0], batch_size)[0]


def _check(model: object, images: Tensor, shifts: ShiftSpec, mode: str, layers: Sequence[str] | None,
           batch_size: BatchSize, crop_size: tuple[int, int] | None, device: str | torch.device | None,
           progress: ProgressFn | None, maps_at_once: int) -> tuple[Request, LayerSelection]:
    """Every check before the first pass: ``(the request, the layers to record)`` (unknown layer
    names fail here)."""
    request = check_request(model, images, shifts, mode=mode, batch_size=batch_size, crop_size=crop_size,
                            device=device, progress=progress, maps_at_once=maps_at_once)
    return request, select_layers(request.runner, layers)


def _run(request: Request, selection: LayerSelection, border: int | None, lo: int, hi: int,
         batch_size: BatchSize) -> tuple[EquivarianceStats, RunInfo]:
    """Run the images ``lo .. hi`` of the request ``[n, C, H, W]`` at every shift with the
    per-layer hooks (the reference images in every pass): their statistics."""
    images = request.images[lo:hi]
    recorder = EquivarianceRecorder(request.runner, selection, request.shift_set.offsets, request.in_hw,
                                    request.mode, border)
    run = run_chunks(request.runner, images, request.shift_set, mode=request.mode, batch_size=batch_size,
                     crop_size=request.crop_size, in_hw=request.in_hw, reference_in_every_pass=True,
                     before_pass=recorder.start, session=recorder.attach, progress=request.progress)
    layers, output = recorder.layers, recorder.output
    stats = EquivarianceStats(request.mode, request.shift_set, (images.shape[1], *request.in_hw), images.shape[0],
                              layers.records, layers.inputs, layers.skipped, output.records.get(OUTPUT))
    return stats, run
