"""The measurement driver shared by :func:`~shiftlab.measure.invariance` and
:func:`~shiftlab.measure.equivariance` (``docs/definitions.md``, "How a measurement runs").

One driver does, for every metric: validate the input, choose the device and the batch size, put
the model in measurement state (:func:`shiftlab.measure.runner.measuring`), then for each block
of images run the model on the block's shifted copies in chunks (built on the model's device)
and hand each chunk's outputs to the metric. The unshifted pass of a block is the pass of the
shift ``(0, 0)`` when the set has it (no separate clean pass); otherwise it rides in the block's
first chunk. Metrics reduce chunks to sums (their ``update``), so memory is bounded by a block.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch
from torch import Tensor

from shiftlab.measure.distributed import active, all_gather, check_same_everywhere, reduce_add, shard_bounds
from shiftlab.measure.onnx_runner import OnnxMeasuring
from shiftlab.measure.runner import Measuring, Runner
from shiftlab.measure.shifts import crop_many, shift_many
from shiftlab.measure.shiftsets import ShiftSet
from shiftlab.measure.validation import check_images

__all__ = ["BatchSize", "Chunk", "ProgressFn", "RunInfo", "auto_batch_size", "check_inputs", "choose_batch_size", "run_chunks",
           "transform"]

BatchSize = int | Literal["auto"]
#: ``progress(done, total)``: forward passes done out of the total.
ProgressFn = Callable[[int, int], None]
#: ``batch_size="auto"`` keeps a forward pass's activations under this share of the free memory.
MEMORY_SHARE = 0.25
#: ... and under this many images (larger CPU batches are no faster, and cost memory).
MAX_AUTO_BATCH = {"cpu": 512, "cuda": 4096, "mps": 1024}
#: With the reference in every pass, a pass carries up to this many shifts of each image (so the
#: repeated reference adds at most 1 / SHIFTS_PER_PASS to the images run).
SHIFTS_PER_PASS = 7


@dataclass
class Chunk:
    """One forward pass's worth of a block: images ``start .. start + n`` at the shifts
    ``shift_index`` (``[s]`` positions in the shift set).

    ``outputs``: ``[s, n, ...]`` what ``forward`` made of the model's outputs at those shifts;
    ``clean``: ``[n, ...]`` the unshifted outputs of the block (the same tensor for every chunk
    of a block); ``last``: the block's last chunk.
    """

    start: int
    n: int
    shift_index: Tensor
    outputs: Tensor
    clean: Tensor
    last: bool


@dataclass(frozen=True)
class RunInfo:
    """How a measurement ran: ``batch_size`` images per forward pass, on ``device``, in
    ``passes`` forward passes over ``images_seen`` images (shifted copies included)."""

    batch_size: int
    device: str
    passes: int
    images_seen: int


def transform(x: Tensor, offsets: Tensor, mode: str, crop_size: tuple[int, int] | None) -> Tensor:
    """Shift (or crop, when ``mode == "crop"``) ``x [n, C, H, W]`` by ``offsets [s, 2]`` -> ``[s, n, C, h, w]``."""
    if mode == "crop":
        if crop_size is None:
            raise ValueError("mode='crop' needs crop_size=(h, w), the window the model sees")
        return crop_many(x, crop_size, offsets)
    return shift_many(x, offsets, mode)


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover (no sysconf)
        return 4 << 30


def auto_batch_size(runner: Runner, example: Tensor) -> int:
    """Images per forward pass so that their activations stay under :data:`MEMORY_SHARE` of the
    free memory of the runner's device (at most :data:`MAX_AUTO_BATCH`). Call inside
    ``runner.session()``.

    Shape: example ``(1, C, h, w)``: one input as the model sees it.
    """
    per_image = max(1, runner.bytes_per_image(example))
    fit = int(_free_bytes(runner.device) * MEMORY_SHARE // per_image)
    return max(1, min(fit, MAX_AUTO_BATCH.get(runner.device.type, 512)))


def choose_batch_size(runner: Runner, images: Tensor, batch_size: BatchSize, *, mode: str,
                      crop_size: tuple[int, int] | None) -> int:
    """``batch_size`` itself, or for ``"auto"`` :func:`auto_batch_size` for the first image of
    ``images [N, C, H, W]`` as the model sees it (cropped in crop mode). Call inside
    ``runner.session()``."""
    if batch_size != "auto":
        return batch_size
    zeros = torch.zeros(1, 2, dtype=torch.float64)
    example = transform(images[:1], zeros, mode, crop_size)[0].to(device=runner.device, dtype=runner.dtype)
    return auto_batch_size(runner, example)


def check_batch_size(batch_size: object) -> None:
    if batch_size == "auto":
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1 or 'auto', got {batch_size!r}")


def check_geometry(images: Tensor, shift_set: ShiftSet, mode: str, crop_size: tuple[int, int] | None) -> tuple[int, int]:
    """Raise before any forward pass when a shift cannot be applied; return the model's input ``(h, w)``."""
    if mode == "crop":
        if crop_size is None:
            raise ValueError("mode='crop' needs crop_size=(h, w), the window the model sees")
        transform(images[:1], shift_set.offsets, mode, crop_size)  # raises if a window leaves the image
        return crop_size[0], crop_size[1]
    h, w = images.shape[-2:]
    shift_set.check_fits(h, w, mode)
    return h, w


def check_inputs(images: object, shift_set: ShiftSet, *, mode: str, batch_size: object,
                 crop_size: tuple[int, int] | None) -> tuple[int, int]:
    """Every check a measurement makes before its first forward pass (images, batch size, shifts
    against the image or crop size); returns the model's input ``(h, w)`` for :func:`run_chunks`."""
    checked = check_images(images)
    check_batch_size(batch_size)
    return check_geometry(checked, shift_set, mode, crop_size)


def _shift_order(shift_set: ShiftSet) -> tuple[Tensor, bool]:
    """Positions in the order they run, and whether position 0 of that order is ``(0, 0)`` (which
    then doubles as the clean pass)."""
    zero = ((shift_set.offsets == 0).all(dim=1)).nonzero()
    n = len(shift_set)
    if zero.numel():
        z = int(zero[0, 0])
        return torch.cat([torch.tensor([z]), torch.arange(z), torch.arange(z + 1, n)]), True
    return torch.arange(n), False


def run_chunks(
    runner: Runner,
    images: Tensor,
    shift_set: ShiftSet,
    *,
    mode: str,
    batch_size: BatchSize,
    crop_size: tuple[int, int] | None,
    in_hw: tuple[int, int],
    forward: Callable[[object, int], Tensor] | None = None,
    on_chunk: Callable[[Chunk], None] | None = None,
    reference_in_every_pass: bool = False,
    before_pass: Callable[[int, Tensor], None] | None = None,
    session: Callable[[Measuring | OnnxMeasuring], None] | None = None,
    progress: ProgressFn | None = None,
) -> RunInfo:
    """Run the model of ``runner`` on every image of ``images`` at every shift of ``shift_set``
    and hand the outputs to ``on_chunk``, one :class:`Chunk` at a time, blocks of images in order.

    Args:
        in_hw: the model's input size, from :func:`check_inputs`, which the caller runs first
            (inputs are not checked again here).
        forward: ``forward(model_output, batch)`` checks one pass's output (``batch`` rows) and
            returns what the metric keeps of it, ``[batch, ...]`` (e.g. float64 logits on the CPU).
        on_chunk: the metric's update; called inside the measurement state.
        reference_in_every_pass: every pass is ``[x; T_d1 x; ...]`` (the unshifted images first,
            for metrics that compare inside a pass, e.g. layer maps in forward hooks) instead of
            one unshifted pass per block. Blocks then hold fewer images, so a pass carries
            several shifts and the repeated reference costs little.
        before_pass: ``before_pass(n, shift_index)`` before each forward pass (``n`` images at
            the shifts ``shift_index``).
        session: called once with the runner's session handle (a torch runner's
            :class:`~shiftlab.measure.runner.Measuring`, an ONNX runner's
            :class:`~shiftlab.measure.onnx_runner.OnnxMeasuring`), to register hooks that are
            removed when the measurement ends.

    Shape:
        - images: ``(N, C, H, W)``; each pass: ``(b, C, h, w)``, ``b <= batch_size`` (or the shifts
          of one image when the set is larger than the batch).
    """
    dev = runner.device
    n_total, n_shifts = images.shape[0], len(shift_set)
    order, zero_first = _shift_order(shift_set)
    zeros = torch.zeros(1, 2, dtype=torch.float64)
    passes = seen = 0
    with runner.session() as handle:
        dtype = runner.dtype
        batch_size = choose_batch_size(runner, images, batch_size, mode=mode, crop_size=crop_size)
        if session is not None:  # the metric's hooks, after the sizing pass
            session(handle)
        if reference_in_every_pass:
            n_img = max(1, min(n_total, batch_size // (1 + min(n_shifts, SHIFTS_PER_PASS))))
            n_shift = max(1, batch_size // n_img - 1)
            order, zero_first = torch.arange(n_shifts), False
        else:
            n_img = min(n_total, batch_size)
            n_shift = max(1, batch_size // n_img)
        # the positions each block runs, in chunks of n_shift; -1 is the unshifted pass
        head = [] if zero_first or reference_in_every_pass else [-1]
        positions = torch.cat([torch.tensor(head, dtype=torch.long), order])
        total = math.ceil(n_total / n_img) * math.ceil(len(positions) / n_shift)
        for start in range(0, n_total, n_img):
            x = images[start: start + n_img].to(device=dev, dtype=dtype)
            n = x.shape[0]
            clean: Tensor | None = None
            for c0 in range(0, len(positions), n_shift):
                pos = positions[c0: c0 + n_shift]
                if reference_in_every_pass:
                    pos = torch.cat([torch.tensor([-1]), pos])
                offsets = torch.where(pos[:, None] < 0, zeros, shift_set.offsets[pos.clamp(min=0)])
                batch = transform(x, offsets, mode, crop_size).reshape(-1, x.shape[1], *in_hw)
                keep = pos >= 0
                if before_pass is not None:
                    before_pass(n, pos[keep])
                out = runner(batch)
                passes, seen = passes + 1, seen + batch.shape[0]
                if forward is not None:
                    out = forward(out, batch.shape[0])
                    out = out.reshape(len(pos), n, *out.shape[1:])
                    if clean is None:
                        clean = out[0]
                    if on_chunk is not None and keep.any():
                        on_chunk(Chunk(start, n, pos[keep], out[keep], clean, c0 + n_shift >= len(positions)))
                if progress:
                    progress(passes, total)
    return RunInfo(batch_size, str(dev), passes, seen)


S = TypeVar("S")


def measure_sharded(
    what: str,
    runner: Runner,
    images: Tensor,
    measure: Callable[[int, int, BatchSize], tuple[S, RunInfo]],
    *,
    batch_size: BatchSize,
    mode: str,
    crop_size: tuple[int, int] | None,
    **same: object,
) -> tuple[S | None, int, str]:
    """Statistics of every image of ``images [N, C, H, W]``, measured as shards across the ranks
    of an initialised ``torch.distributed`` process group (or all here without one;
    ``docs/distributed.md``).

    Checks that every rank passes the same model, images and ``same`` arguments; agrees on one
    batch size for ``"auto"`` (the smallest any rank chose); runs ``measure(lo, hi, batch_size)``
    on this rank's images ``lo .. hi`` (:func:`~shiftlab.measure.distributed.shard_bounds`;
    nothing on a rank without images); and adds the statistics over the ranks in rank order.
    Returns the total (None only when no rank had images), the batch size and the device used.
    """
    check_same_everywhere(what, model=runner.identity, images=images, **same)
    if active() and batch_size == "auto":
        with runner.session(warn=False):
            size = choose_batch_size(runner, images, batch_size, mode=mode, crop_size=crop_size)
        batch_size = min(all_gather(size))
    lo, hi = shard_bounds(images.shape[0])
    stats, run = (None, None) if hi <= lo else measure(lo, hi, batch_size)
    total = reduce_add(stats)
    if run is not None:
        return total, run.batch_size, run.device
    assert batch_size != "auto"  # only a rank of a process group has no images, and the group agreed on a size
    return total, batch_size, str(runner.device)
