"""Shift invariance of a classifier's predictions (``docs/definitions.md``, "Invariance metrics").

For images ``x_1..x_N`` and a shift set ``S`` (used uniformly), with top-1 class ``c``:

- **consistency** = mean over images of ``sum_k (n_k / |S|)^2``, ``n_k`` the number of shifts in
  ``S`` at which the image is classified ``k``: exactly the probability that two shifts drawn
  independently from ``U(S)`` agree (Zhang 2019's consistency, computed without sampling);
- **clean consistency** = ``P_{a ~ U(S)}[c(T_a x) = c(x)]``, also per shift;
- **accuracy** (unshifted), **accuracy by shift** ``acc(d)``, **mean shifted accuracy**;
- **worst-case accuracy** = fraction of images classified correctly at *every* ``d`` in ``S``;
- **flip rate** = ``P[c(T_d x) != c(T_{d+e} x)]`` over the unit steps ``e`` inside ``S``
  (Azulay & Weiss 2019);
- **top-1 probability change** = mean ``|p_{c(x)}(T_d x) - p_{c(x)}(x)|``.

A **caution** comes with every result (``docs/definitions.md``, "Degenerate predictions"):
:func:`~shiftlab.measure.invariance_result.degenerate_reason` says in one sentence when the
classifier is near-constant or near-flat, so that its perfect scores mean nothing.

:func:`invariance` checks every argument once (:func:`~shiftlab.measure.request.check_request`,
then the labels and ``certify``), plans the passes (the polyphase certificate may reduce the
shifts run to one per residue, :mod:`shiftlab.measure.certificate`), runs them
(:class:`~shiftlab.measure.invariance_recorder.PredictionRecorder` turns each chunk of logits into
:class:`~shiftlab.measure.invariance_statistics.InvarianceStats`, sums that add up across blocks
and processes) and computes the :class:`~shiftlab.measure.invariance_result.InvarianceResult`
(:func:`~shiftlab.measure.invariance_statistics.invariance_compute`). Under an initialised
``torch.distributed`` process group it measures this rank's shard of the images and adds the
statistics of every rank (:mod:`shiftlab.measure.distributed`, ``docs/distributed.md``).
:func:`invariance_stats` gives the statistics of one process's images alone (what
``shiftlab.metrics`` accumulates batch by batch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from shiftlab.measure.certificate import CHECK_IMAGES, Certificate, residue_plan
from shiftlab.measure.certificate import certify as certify_premise
from shiftlab.measure.distributed import all_or_none, first_rank
from shiftlab.measure.driver import BatchSize, ProgressFn, RunInfo, measure_sharded, run_chunks
from shiftlab.measure.invariance_recorder import PredictionRecorder
from shiftlab.measure.invariance_result import DEGENERATE_MAJORITY_SHARE, InvarianceResult
from shiftlab.measure.invariance_statistics import (
    InvarianceStats,
    consistency_from_predictions,
    invariance_compute,
    invariance_update,
)
from shiftlab.measure.request import Request, check_request
from shiftlab.measure.shiftsets import ShiftSet, ShiftSpec
from shiftlab.measure.validation import check_labels

# The result and statistics types are defined in their own modules and importable from here too.
__all__ = ["DEGENERATE_MAJORITY_SHARE", "InvarianceResult", "InvarianceStats", "consistency_from_predictions",
           "invariance", "invariance_compute", "invariance_stats", "invariance_update"]


def invariance(
    model: nn.Module | str | os.PathLike[str],
    images: Tensor,
    labels: Tensor | None = None,
    *,
    shifts: ShiftSpec = 2,
    mode: str = "circular",
    batch_size: BatchSize = 256,
    crop_size: tuple[int, int] | None = None,
    device: str | torch.device | None = None,
    keep_predictions: bool = False,
    certify: bool | str = "auto",
    progress: ProgressFn | None = None,
) -> InvarianceResult:
    """Measure how a classifier's predictions change under shifts of its input.

    Args:
        model: classifier mapping ``[B, C, h, w]`` to logits ``[B, K]``. Measured in eval mode under
            ``torch.inference_mode``; its modes, hooks, parameters and device are restored afterwards.
            Or an ONNX classifier (``docs/onnx.md``): the path of an ``.onnx`` file or an
            ``onnxruntime.InferenceSession``.
        images: ``[N, C, H, W]`` floating point. Shifted on the model's device, chunk by chunk.
        labels: optional ``[N]`` class indices, for the accuracy fields.
        shifts: int ``m`` (every shift in ``[-m, m]^2``), a list of ``(dy, dx)`` or a ``ShiftSet``.
        mode: ``"circular"``, ``"zeros"``, ``"fourier"`` or ``"crop"`` (Zhang's protocol: the model
            sees ``crop_size`` windows of larger images, displaced by each shift from the centre).
        batch_size: images per forward pass (shifted copies included), or ``"auto"`` (the largest
            that fits a memory bound: :func:`shiftlab.measure.driver.auto_batch_size`; the result
            says which). Results do not depend on it.
        crop_size: ``(h, w)`` for ``mode="crop"``.
        device: where to run (``"cpu"``, ``"cuda"``, ``"auto"``: CUDA when available); default
            the model's own device. The model is moved there for the call and moved back.
        keep_predictions: keep the ``[N, |S|]`` table of top-1 classes in ``result.predictions``.
        certify: the polyphase certificate (:mod:`shiftlab.measure.certificate`): with ``"auto"``,
            circular integer shifts of a model whose premise holds on the data cost one pass per
            residue modulo its total stride (``result.method == "certified"``), else every shift
            runs (``"exact"``); ``True`` raises with the reason when the premise fails; ``False``
            never certifies. ``result.certificate`` says what was checked.
        progress: called as ``progress(done, total)`` after each forward pass (of this process).

    Returns:
        :class:`InvarianceResult`. When ``(0, 0)`` is in the shift set its forward pass is the
        unshifted one (no separate clean pass).

    Under an initialised ``torch.distributed`` process group (``docs/distributed.md``), every
    rank passes the same model, images and arguments (checked); each measures a contiguous
    shard of the images (:func:`shiftlab.measure.distributed.shard_bounds`), the statistics are
    added across ranks in rank order, and every rank returns the same result (``device`` is the
    rank's own). Rank 0 checks the certificate's premise for all, on the first images of the
    whole set; ``batch_size="auto"`` takes the smallest size any rank chose.

    Shape:
        - images: ``(N, C, H, W)``; labels: ``(N,)``
        - result.predictions: ``(N, |S|)``

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
        >>> invariance(net, torch.randn(8, 1, 6, 6), shifts=2).consistency
        1.0
    """
    with all_or_none():
        request, labels = _check(model, images, labels, shifts, mode, batch_size, crop_size, device, certify, progress)
        plan = _plan(request, certify, shared=True)

        def measure(lo: int, hi: int, size: BatchSize) -> tuple[InvarianceStats, RunInfo]:
            return _run(request, plan, labels, lo, hi, size, keep_predictions)

        total, used_batch, used_device = measure_sharded(
            "invariance", request.runner, images, measure, batch_size=batch_size, mode=mode, crop_size=crop_size,
            labels=labels, shifts=request.shift_set.offsets,
            arguments=(mode, batch_size, crop_size, keep_predictions, certify))
    assert total is not None  # rank 0 always has images
    result = invariance_compute(total, request.shift_set, mode=mode, method=plan.method)
    result.batch_size, result.device, result.certificate = used_batch, used_device, plan.certificate
    return result


def invariance_stats(
    model: nn.Module | str | os.PathLike[str],
    images: Tensor,
    labels: Tensor | None = None,
    *,
    shifts: ShiftSpec = 2,
    mode: str = "circular",
    batch_size: BatchSize = 256,
    crop_size: tuple[int, int] | None = None,
    device: str | torch.device | None = None,
    certify: bool | str = "auto",
) -> InvarianceStats:
    """The :class:`InvarianceStats` of ``images`` measured in this process alone: no sharding
    and no exchange even under a process group (the statistics of one rank's own batch, which
    ``shiftlab.metrics`` accumulates; add them with ``+`` and finish with
    :func:`invariance_compute`). Arguments as for :func:`invariance` (the predictions table is
    not kept); the model is left exactly as it was.

    Shape: images ``(N, C, H, W)``; labels ``(N,)``.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        >>> x = torch.randn(6, 1, 8, 8)
        >>> net = net.eval()
        >>> total = invariance_stats(net, x[:4], shifts=1) + invariance_stats(net, x[4:], shifts=1)
        >>> invariance_compute(total).consistency == invariance(net, x, shifts=1).consistency
        True
    """
    request, labels = _check(model, images, labels, shifts, mode, batch_size, crop_size, device, certify, None)
    plan = _plan(request, certify, shared=False)
    return _run(request, plan, labels, 0, images.shape[0], batch_size, False)[0]


def _check(model: object, images: Tensor, labels: Tensor | None, shifts: ShiftSpec, mode: str,
           batch_size: BatchSize, crop_size: tuple[int, int] | None, device: str | torch.device | None,
           certify: bool | str, progress: ProgressFn | None) -> tuple[Request, Tensor | None]:
    """Every check before a forward pass: ``(the request, labels as int64 on the CPU, where the
    predictions are compared with them)``."""
    if certify not in (True, False, "auto"):
        raise ValueError(f"certify must be 'auto', True or False, got {certify!r}")
    request = check_request(model, images, shifts, mode=mode, batch_size=batch_size, crop_size=crop_size,
                            device=device, progress=progress)
    return request, None if labels is None else check_labels(labels, images.shape[0]).cpu()


@dataclass(frozen=True)
class _Plan:
    """The passes of a measurement: the shifts ``run_set`` are run; ``expand``, when certified,
    gives for each shift of the request its residue's position in ``run_set``; ``method`` as
    :attr:`InvarianceResult.method`; ``certificate``: what was checked (None when not tried)."""

    certificate: Certificate | None
    run_set: ShiftSet
    expand: Tensor | None
    method: str


def _plan(request: Request, certify: bool | str, *, shared: bool) -> _Plan:
    """Which shifts run: the residues of the shift set modulo the total stride when the polyphase
    certificate holds and saves passes (or ``certify=True``, which raises when it does not hold),
    else every shift. ``shared``: the certificate is checked on rank 0 and used by every rank."""
    def check() -> Certificate | None:
        return _certificate(request, certify)

    cert = first_rank(check) if shared else check()
    shift_set = request.shift_set
    sampled = "sampled" if shift_set.label.startswith("random") else "exact"
    if cert is None or not cert.holds:
        if certify is True:
            assert cert is not None
            raise ValueError(f"certify=True, but the polyphase certificate does not hold: {cert.reason}")
        return _Plan(cert, shift_set, None, sampled)
    assert cert.stride is not None  # a certificate that holds found the stride
    residues, index = residue_plan(shift_set, cert.stride)
    if len(residues) == len(shift_set) and certify == "auto":
        return _Plan(cert, shift_set, None, sampled)  # nothing to save
    return _Plan(cert, residues, index, "certified")


def _certificate(request: Request, certify: bool | str) -> Certificate | None:
    """The polyphase certificate checked on the first :data:`~shiftlab.measure.certificate.CHECK_IMAGES`
    images, or None when it is not to be tried."""
    if certify is False or certify == "auto" and (request.mode != "circular" or not request.shift_set.is_integer):
        return None
    runner = request.runner
    sample = request.images[:CHECK_IMAGES].to(device=runner.device, dtype=runner.dtype)  # all the premise check uses
    with runner.session(warn=False):
        return certify_premise(runner.model, sample, request.shift_set, mode=request.mode)


def _run(request: Request, plan: _Plan, labels: Tensor | None, lo: int, hi: int, batch_size: BatchSize,
         keep: bool) -> tuple[InvarianceStats, RunInfo]:
    """Run the images ``lo .. hi`` of the request at the shifts of the plan and reduce them to
    statistics over the request's shifts (``labels`` are those of all the images)."""
    recorder = PredictionRecorder(len(plan.run_set), labels, keep, request.shift_set.unit_step_pairs(), plan.expand,
                                  lo)
    run = run_chunks(request.runner, request.images[lo:hi], plan.run_set, mode=request.mode, batch_size=batch_size,
                     crop_size=request.crop_size, in_hw=request.in_hw, forward=recorder.forward, on_chunk=recorder,
                     progress=request.progress)
    assert recorder.total is not None  # every block ends with a last chunk
    return recorder.total, run
